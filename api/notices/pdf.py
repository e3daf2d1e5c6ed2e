"""The printable notice (PDF, Vietnamese): the violation, its legal reference and fine in force at the
time, how to respond, and the photo sheet of the evidence stills and plate crop.

Rendered with fpdf2 and the DejaVu Sans font (Debian `fonts-dejavu-core`, which has every Vietnamese
glyph); `render_pdf` is pure (data in, bytes out) and `document_for` gathers the data of a violation.
fpdf2 is imported when a PDF is rendered, not when this module is imported.
"""

from __future__ import annotations

import importlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session

from api.errors import ServerError, StorageError
from api.models import Camera, Device, District, Violation
from api.notices.catalogue import VIETNAM_TZ, Catalogue, legal_basis
from api.notices.plate import shown_plate
from api.notices.sms import VIOLATION_LABELS
from api.services.violations import EvidenceIntegrityError, verified_bytes
from api.storage import EvidenceStore

log = logging.getLogger(__name__)

FONT_DIRS: Final = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
# The plate readers' background colours (`plates.colour`) as a notice says them.
PLATE_COLOURS: Final = {"white": "trắng", "yellow": "vàng", "blue": "xanh", "red": "đỏ"}
STILL_CAPTIONS: Final = {
    "still_before": "Trước vi phạm",
    "still_at": "Thời điểm vi phạm",
    "still_after": "Sau vi phạm",
}


class NoticePdfError(ServerError):
    """The PDF cannot be rendered (font missing, fpdf2 not installed, bad image)."""


@dataclass(frozen=True)
class NoticeDocument:
    """Everything printed on a notice (no owner data besides what the caller puts in `addressee`)."""

    notice_number: str
    plate: str
    plate_colour: str | None
    occurred_at: datetime
    place: str
    behaviour: str
    legal_reference: str
    fine_min_vnd: int | None
    fine_max_vnd: int | None
    licence_points: int
    lookup_url: str
    lookup_code: str | None
    authority: str = "Phòng Cảnh sát giao thông"
    addressee: str | None = None
    stills: Sequence[tuple[str, bytes]] = field(default_factory=tuple)
    plate_crop: bytes | None = None


def vnd(amount: int) -> str:
    """`18000000` → `18.000.000 đồng` (Vietnamese thousands separator)."""
    return f"{amount:,}".replace(",", ".") + " đồng"


def document_for(
    session: Session,
    store: EvidenceStore,
    violation: Violation,
    catalogue: Catalogue,
    *,
    notice_number: str,
    lookup_url: str,
    lookup_code: str | None = None,
) -> NoticeDocument:
    """The printable data of a violation: place from its camera, fine from the catalogue at its time,
    stills and plate crop from the evidence store (a missing file is left out and logged)."""
    camera = session.get(Camera, violation.camera_id)
    district = session.get(District, violation.district_id) if violation.district_id else None
    place = camera.name if camera is not None else violation.camera_id
    if district is not None:
        place = f"{place}, {district.name}"
    basis = legal_basis(violation, catalogue)
    entry = basis.entry
    stills: list[tuple[str, bytes]] = []
    crop: bytes | None = None
    device = session.get(Device, violation.device_id)
    for f in violation.files:
        if f.deleted_at is not None or f.kind == "clip":
            continue
        try:
            data = verified_bytes(store, violation, device, f)  # only what the device signed is printed
        except EvidenceIntegrityError as e:
            log.error("%s: left out of the notice", e)
            continue
        except StorageError:
            log.warning(
                "violation %s: evidence file %s unreadable, left out of the notice", violation.id, f.name
            )
            continue
        if f.kind == "plate":
            crop = data
        else:
            stills.append((STILL_CAPTIONS.get(f.kind, f.kind), data))
    order = list(STILL_CAPTIONS.values())
    stills.sort(key=lambda s: order.index(s[0]) if s[0] in order else len(order))
    label = VIOLATION_LABELS.get(violation.rule, violation.rule)
    return NoticeDocument(
        notice_number=notice_number,
        plate=shown_plate(violation) or "(không đọc được)",
        plate_colour=violation.plate_colour,
        occurred_at=violation.occurred_at,
        place=place,
        behaviour=entry.summary if entry is not None else label,
        legal_reference=basis.citation,
        fine_min_vnd=None if entry is None else entry.fine_min_vnd,
        fine_max_vnd=None if entry is None else entry.fine_max_vnd,
        licence_points=0 if entry is None else entry.licence_points,
        lookup_url=lookup_url,
        lookup_code=lookup_code,
        stills=tuple(stills),
        plate_crop=crop,
    )


def find_font(dirs: Sequence[Path] = FONT_DIRS) -> tuple[Path, Path]:
    """DejaVu Sans regular and bold.

    Raises:
        NoticePdfError: not installed (install Debian's `fonts-dejavu-core`).
    """
    for d in dirs:
        regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    raise NoticePdfError("DejaVu Sans not found: install fonts-dejavu-core")


def render_pdf(doc: NoticeDocument, fonts: tuple[Path, Path] | None = None) -> bytes:
    """The notice as PDF bytes (A4, one or two pages).

    Raises:
        NoticePdfError: font or fpdf2 missing, or an image that cannot be placed.
    """
    # Imported by name so that the server (and mypy) work without the optional fpdf2 installed.
    try:
        fpdf: Any = importlib.import_module("fpdf")
    except ImportError as e:
        raise NoticePdfError("fpdf2 is not installed (pip install fpdf2)") from e
    regular, bold = fonts or find_font()
    pdf = fpdf.FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.add_page()
    width = pdf.epw

    def line(label: str, value: str) -> None:
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(55, 7, label)
        pdf.set_font("DejaVu", "", 11)
        pdf.multi_cell(width - 55, 7, value, new_x="LMARGIN", new_y="NEXT")

    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(width / 2, 6, doc.authority.upper())
    pdf.cell(width / 2, 6, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(width / 2, 6, f"Số: {doc.notice_number}")
    pdf.cell(width / 2, 6, "Độc lập - Tự do - Hạnh phúc", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(width, 8, "THÔNG BÁO\nVI PHẠM HÀNH CHÍNH VỀ TRẬT TỰ, AN TOÀN GIAO THÔNG", align="C")
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(
        width,
        6,
        "(phát hiện qua phương tiện, thiết bị kỹ thuật nghiệp vụ - Thông tư 73/2024/TT-BCA)",
        align="C",
    )
    pdf.ln(4)
    if doc.addressee:
        line("Kính gửi:", doc.addressee)
    local = doc.occurred_at.astimezone(VIETNAM_TZ)
    colour = PLATE_COLOURS.get(doc.plate_colour or "", doc.plate_colour)
    line("Biển số:", doc.plate + (f" (nền {colour})" if colour else ""))
    line("Thời gian:", local.strftime("%H:%M:%S ngày %d/%m/%Y"))
    line("Địa điểm:", doc.place)
    line("Hành vi vi phạm:", doc.behaviour)
    line("Căn cứ pháp lý:", doc.legal_reference)
    if doc.fine_min_vnd is not None and doc.fine_max_vnd is not None:
        line("Mức phạt tiền:", f"từ {vnd(doc.fine_min_vnd)} đến {vnd(doc.fine_max_vnd)}")
    if doc.licence_points:
        line("Trừ điểm GPLX:", f"{doc.licence_points} điểm")
    pdf.ln(3)
    respond = (
        "Đề nghị chủ phương tiện, người điều khiển phương tiện đến trụ sở cơ quan Công an ghi trên thông "
        "báo này hoặc trả lời qua ứng dụng VNeTraffic trong thời hạn 20 ngày kể từ ngày nhận thông báo để "
        "giải quyết vụ việc. Tra cứu hình ảnh vi phạm tại "
        f"{doc.lookup_url}"
        + (f" với mã tra cứu {doc.lookup_code}." if doc.lookup_code else " với mã tra cứu đã được cấp.")
    )
    pdf.set_font("DejaVu", "", 11)
    pdf.multi_cell(width, 6, respond, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "B", 12)
    pdf.cell(width, 8, "ẢNH VI PHẠM", new_x="LMARGIN", new_y="NEXT")
    try:
        _photo_sheet(pdf, doc)
    except Exception as e:
        raise NoticePdfError(f"evidence image cannot be placed: {e}") from e
    return bytes(pdf.output())


def _photo_sheet(pdf: Any, doc: NoticeDocument) -> None:
    width = pdf.epw
    gap = 4.0
    n = max(len(doc.stills), 1)
    w = (width - gap * (n - 1)) / n
    h = w * 9 / 16
    if pdf.get_y() + h + 12 > pdf.page_break_trigger:
        pdf.add_page()
    top = pdf.get_y()
    for i, (caption, data) in enumerate(doc.stills):
        x = pdf.l_margin + i * (w + gap)
        pdf.image(io.BytesIO(data), x=x, y=top, w=w, h=h, keep_aspect_ratio=True)
        pdf.set_xy(x, top + h + 1)
        pdf.set_font("DejaVu", "", 9)
        pdf.cell(w, 5, caption, align="C")
    pdf.set_xy(pdf.l_margin, top + (h + 8 if doc.stills else 0))
    if doc.plate_crop is not None:
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(width, 6, "Ảnh biển số:", new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(doc.plate_crop), x=pdf.l_margin, w=60, keep_aspect_ratio=True)
