"""Vietnamese registration codes (the two digits that start a plate) and the provinces they belong to.

Since 1 July 2025 Vietnam has 34 provincial units (Resolution 202/2025/QH15 on the merger of
provinces). Circular 79/2024/TT-BCA on vehicle registration, as amended after the merger, keeps every
former code: a merged province registers vehicles under all the codes of the provinces it absorbed,
and plates issued before the merger stay valid on the road. So the set of valid codes did not change;
only the province each code belongs to did.

Valid: 11-99 except the codes that were never issued: 13, 42, 44, 45, 46, 87, 91, 96 (and nothing
below 11: 01-10 are not used on civilian plates; military plates start with letters). 80 is the
code of the central registration office (Traffic Police Department) for central agencies and
foreign missions.

Sources (read 2025; they agree with each other):
- the pre-merger code table of Circular 58/2020/TT-BCA, Appendix 02, as republished in public
  plate-grammar repositories (e.g. github.com/poohoh/regex_license_plate, a region table by code);
- the post-merger table "Danh sách biển số xe các tỉnh thành Việt Nam mới nhất 2025"
  (daehan.vn/bien-so-xe-cac-tinh-thanh, 20 Oct 2025), which lists the codes of each of the 34 units.
"""

from __future__ import annotations

from types import MappingProxyType

#: Code -> (province since 1 July 2025, province the code was created for). Both equal when the
#: province was not merged.
PROVINCES: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        "11": ("Cao Bằng", "Cao Bằng"),
        "12": ("Lạng Sơn", "Lạng Sơn"),
        "14": ("Quảng Ninh", "Quảng Ninh"),
        "15": ("Hải Phòng", "Hải Phòng"),
        "16": ("Hải Phòng", "Hải Phòng"),
        "17": ("Hưng Yên", "Thái Bình"),
        "18": ("Ninh Bình", "Nam Định"),
        "19": ("Phú Thọ", "Phú Thọ"),
        "20": ("Thái Nguyên", "Thái Nguyên"),
        "21": ("Lào Cai", "Yên Bái"),
        "22": ("Tuyên Quang", "Tuyên Quang"),
        "23": ("Tuyên Quang", "Hà Giang"),
        "24": ("Lào Cai", "Lào Cai"),
        "25": ("Lai Châu", "Lai Châu"),
        "26": ("Sơn La", "Sơn La"),
        "27": ("Điện Biên", "Điện Biên"),
        "28": ("Phú Thọ", "Hòa Bình"),
        "29": ("Hà Nội", "Hà Nội"),
        "30": ("Hà Nội", "Hà Nội"),
        "31": ("Hà Nội", "Hà Nội"),
        "32": ("Hà Nội", "Hà Nội"),
        "33": ("Hà Nội", "Hà Tây (merged into Hà Nội in 2008)"),
        "34": ("Hải Phòng", "Hải Dương"),
        "35": ("Ninh Bình", "Ninh Bình"),
        "36": ("Thanh Hóa", "Thanh Hóa"),
        "37": ("Nghệ An", "Nghệ An"),
        "38": ("Hà Tĩnh", "Hà Tĩnh"),
        "39": ("Đồng Nai", "Đồng Nai"),
        "40": ("Hà Nội", "Hà Nội"),
        "41": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "43": ("Đà Nẵng", "Đà Nẵng"),
        "47": ("Đắk Lắk", "Đắk Lắk"),
        "48": ("Lâm Đồng", "Đắk Nông"),
        "49": ("Lâm Đồng", "Lâm Đồng"),
        "50": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "51": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "52": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "53": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "54": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "55": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "56": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "57": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "58": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "59": ("Hồ Chí Minh City", "Hồ Chí Minh City"),
        "60": ("Đồng Nai", "Đồng Nai"),
        "61": ("Hồ Chí Minh City", "Bình Dương"),
        "62": ("Tây Ninh", "Long An"),
        "63": ("Đồng Tháp", "Tiền Giang"),
        "64": ("Vĩnh Long", "Vĩnh Long"),
        "65": ("Cần Thơ", "Cần Thơ"),
        "66": ("Đồng Tháp", "Đồng Tháp"),
        "67": ("An Giang", "An Giang"),
        "68": ("An Giang", "Kiên Giang"),
        "69": ("Cà Mau", "Cà Mau"),
        "70": ("Tây Ninh", "Tây Ninh"),
        "71": ("Vĩnh Long", "Bến Tre"),
        "72": ("Hồ Chí Minh City", "Bà Rịa - Vũng Tàu"),
        "73": ("Quảng Trị", "Quảng Bình"),
        "74": ("Quảng Trị", "Quảng Trị"),
        "75": ("Huế", "Thừa Thiên Huế"),
        "76": ("Quảng Ngãi", "Quảng Ngãi"),
        "77": ("Gia Lai", "Bình Định"),
        "78": ("Đắk Lắk", "Phú Yên"),
        "79": ("Khánh Hòa", "Khánh Hòa"),
        "80": ("central agencies", "central agencies"),
        "81": ("Gia Lai", "Gia Lai"),
        "82": ("Quảng Ngãi", "Kon Tum"),
        "83": ("Cần Thơ", "Sóc Trăng"),
        "84": ("Vĩnh Long", "Trà Vinh"),
        "85": ("Khánh Hòa", "Ninh Thuận"),
        "86": ("Lâm Đồng", "Bình Thuận"),
        "88": ("Phú Thọ", "Vĩnh Phúc"),
        "89": ("Hưng Yên", "Hưng Yên"),
        "90": ("Ninh Bình", "Hà Nam"),
        "92": ("Đà Nẵng", "Quảng Nam"),
        "93": ("Đồng Nai", "Bình Phước"),
        "94": ("Cà Mau", "Bạc Liêu"),
        "95": ("Cần Thơ", "Hậu Giang"),
        "97": ("Thái Nguyên", "Bắc Kạn"),
        "98": ("Bắc Ninh", "Bắc Giang"),
        "99": ("Bắc Ninh", "Bắc Ninh"),
    }
)

#: Codes in 11-99 that were never issued.
NEVER_ISSUED: frozenset[str] = frozenset({"13", "42", "44", "45", "46", "87", "91", "96"})

#: Every code that is or was issued.
PROVINCE_CODES: frozenset[str] = frozenset(PROVINCES)


def province_name(code: str) -> str | None:
    """The province (after the July 2025 merger) that registers under `code`, or None if unknown."""
    entry = PROVINCES.get(code)
    return entry[0] if entry else None
