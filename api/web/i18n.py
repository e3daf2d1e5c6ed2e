"""Labels of the review web app in Vietnamese (the default) and English.

One table, `key → (Vietnamese, English)`, serves both the server-rendered page shells and the
JavaScript (each page embeds the table of its language as JSON). The language is the `pn_lang` cookie
(`vi` or `en`), set by the switch in the page header; it carries no credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Literal

Lang = Literal["vi", "en"]
LANGS: Final[tuple[Lang, ...]] = ("vi", "en")
DEFAULT_LANG: Final[Lang] = "vi"
LANG_COOKIE: Final = "pn_lang"
#: Rule ids of `violations.types.RuleId`, statuses and decision reasons, in the order the pages list them.
RULES: Final = ("red_light", "stop_line", "wrong_way", "wrong_lane", "illegal_stop", "sidewalk", "speeding")
STATUSES: Final = ("new", "confirmed", "rejected")
REASONS: Final = ("plate_unreadable", "not_a_violation", "emergency_vehicle", "duplicate", "other")

_LABELS: Final[dict[str, tuple[str, str]]] = {
    # --- shell
    "app.name": ("Phạt nguội", "Phạt nguội"),
    "app.tagline": ("Hệ thống xử lý vi phạm giao thông qua camera", "Camera traffic enforcement"),
    "nav.main": ("Điều hướng chính", "Main navigation"),
    "nav.map": ("Bản đồ", "Map"),
    "nav.review": ("Duyệt vi phạm", "Review"),
    "nav.stats": ("Thống kê", "Statistics"),
    "nav.notices": ("Thông báo", "Notices"),
    "nav.lookup": ("Tra cứu", "Lookup"),
    "nav.logout": ("Đăng xuất", "Log out"),
    "nav.skip": ("Chuyển đến nội dung chính", "Skip to main content"),
    "lang.switch": ("English", "Tiếng Việt"),
    "lang.switch_label": ("Chuyển sang tiếng Anh", "Switch to Vietnamese"),
    "user.signed_in_as": ("Đăng nhập:", "Signed in:"),
    "role.admin": ("Quản trị", "Admin"),
    "role.supervisor": ("Chỉ huy", "Supervisor"),
    "role.officer": ("Cán bộ", "Officer"),
    "common.loading": ("Đang tải…", "Loading…"),
    "common.error": ("Lỗi", "Error"),
    "common.close": ("Đóng", "Close"),
    "common.cancel": ("Huỷ", "Cancel"),
    "common.apply": ("Áp dụng", "Apply"),
    "common.all": ("Tất cả", "All"),
    "common.none": ("—", "—"),
    "common.offline": ("Không kết nối được máy chủ", "Cannot reach the server"),
    "common.session_expired": ("Phiên đăng nhập đã hết hạn", "Your session has expired"),
    "common.forbidden": ("Bạn không có quyền thực hiện thao tác này", "You may not do this"),
    "common.not_found": ("Không tìm thấy", "Not found"),
    # --- login
    "login.title": ("Đăng nhập", "Log in"),
    "login.username": ("Tên đăng nhập", "Username"),
    "login.password": ("Mật khẩu", "Password"),
    "login.submit": ("Đăng nhập", "Log in"),
    "login.failed": ("Sai tên đăng nhập hoặc mật khẩu", "Wrong username or password"),
    "login.expired": (
        "Phiên đăng nhập đã hết hạn, vui lòng đăng nhập lại",
        "Your session has expired; please log in again",
    ),
    "login.too_many": ("Đăng nhập sai quá nhiều lần, thử lại sau", "Too many failed logins; try later"),
    "login.intro": (
        "Dành cho cán bộ cảnh sát giao thông. Người dân tra cứu vi phạm tại trang Tra cứu.",
        "For traffic police officers. Citizens look violations up on the Lookup page.",
    ),
    # --- filters
    "filter.title": ("Bộ lọc", "Filters"),
    "filter.period": ("Thời gian", "Period"),
    "filter.today": ("Hôm nay", "Today"),
    "filter.7d": ("7 ngày qua", "Last 7 days"),
    "filter.30d": ("30 ngày qua", "Last 30 days"),
    "filter.custom": ("Tuỳ chọn", "Custom"),
    "filter.from": ("Từ ngày", "From"),
    "filter.to": ("Đến ngày", "To"),
    "filter.rule": ("Loại vi phạm", "Violation type"),
    "filter.status": ("Trạng thái", "Status"),
    "filter.camera": ("Camera", "Camera"),
    "filter.district": ("Quận/huyện", "District"),
    "filter.plate": ("Biển số", "Plate"),
    "filter.plate_hint": (
        "Dùng * cho nhiều ký tự, ? cho một ký tự (vd 30A*). Nhấn / để tìm.",
        "Use * for any characters, ? for one (e.g. 30A*). Press / to search.",
    ),
    "filter.fuzzy": ("Tìm gần đúng", "Fuzzy match"),
    "filter.fuzzy_0": ("Chính xác", "Exact"),
    "filter.fuzzy_1": ("Sai 1 ký tự", "1 character off"),
    "filter.fuzzy_2": ("Sai 2 ký tự", "2 characters off"),
    "filter.search": ("Tìm", "Search"),
    "filter.reset": ("Xoá lọc", "Clear filters"),
    # --- rules (violations.types.RuleId)
    "rule.red_light": ("Vượt đèn đỏ", "Red light"),
    "rule.stop_line": ("Dừng quá vạch dừng", "Stop line"),
    "rule.wrong_way": ("Đi ngược chiều", "Wrong way"),
    "rule.wrong_lane": ("Đi sai làn đường", "Wrong lane"),
    "rule.illegal_stop": ("Dừng, đỗ sai quy định", "Illegal stop"),
    "rule.sidewalk": ("Đi trên vỉa hè", "Sidewalk"),
    "rule.speeding": ("Chạy quá tốc độ", "Speeding"),
    # --- statuses
    "status.new": ("Chờ duyệt", "To review"),
    "status.confirmed": ("Đã xác nhận", "Confirmed"),
    "status.rejected": ("Đã loại bỏ", "Rejected"),
    "camera.online": ("Đang hoạt động", "Online"),
    "camera.stale": ("Mất tín hiệu", "Stale"),
    "camera.never": ("Chưa kết nối", "Never seen"),
    "camera.last_seen": ("Lần cuối:", "Last seen:"),
    "camera.open_queue": ("Mở hàng đợi của camera", "Open this camera's queue"),
    # --- vehicle classes and plate colours
    "vehicle.car": ("Ô tô", "Car"),
    "vehicle.motorcycle": ("Mô tô, xe máy", "Motorcycle"),
    "vehicle.bus": ("Xe khách", "Bus"),
    "vehicle.truck": ("Xe tải", "Truck"),
    "vehicle.bicycle": ("Xe đạp", "Bicycle"),
    "vehicle.person": ("Người đi bộ", "Pedestrian"),
    "colour.white": ("Trắng", "White"),
    "colour.yellow": ("Vàng", "Yellow"),
    "colour.blue": ("Xanh", "Blue"),
    "colour.red": ("Đỏ", "Red"),
    "signal.red": ("Đèn đỏ", "Red"),
    "signal.amber": ("Đèn vàng", "Amber"),
    "signal.green": ("Đèn xanh", "Green"),
    "signal.unknown": ("Không rõ", "Unknown"),
    # --- map
    "map.title": ("Bản đồ vi phạm", "Violation map"),
    "map.label": ("Bản đồ camera và vi phạm", "Map of cameras and violations"),
    "map.cameras": ("Camera", "Cameras"),
    "map.violations": ("Vi phạm", "Violations"),
    "map.legend": ("Chú giải", "Legend"),
    "map.count": ("{n} vi phạm trên bản đồ", "{n} violations on the map"),
    "map.truncated": (
        "Chỉ hiện {n} vi phạm mới nhất; thu hẹp bộ lọc để xem hết.",
        "Showing the newest {n}; narrow the filters to see all.",
    ),
    "map.no_tiles": (
        "Không có bản đồ nền (chưa cấu hình máy chủ bản đồ): chỉ hiện điểm camera và vi phạm.",
        "No base map (no tile server configured): cameras and violations only.",
    ),
    "map.open_violation": ("Xem bằng chứng", "View evidence"),
    "map.zoom_in": ("Phóng to", "Zoom in"),
    "map.zoom_out": ("Thu nhỏ", "Zoom out"),
    "map.layers": ("Lớp bản đồ", "Layers"),
    # --- review
    "review.title": ("Duyệt vi phạm", "Review violations"),
    "review.list": ("Danh sách vi phạm", "Violations"),
    "review.col_time": ("Thời gian", "Time"),
    "review.col_plate": ("Biển số", "Plate"),
    "review.col_rule": ("Vi phạm", "Violation"),
    "review.col_camera": ("Camera", "Camera"),
    "review.col_status": ("Trạng thái", "Status"),
    "review.col_conf": ("Độ tin cậy", "Confidence"),
    "review.more": ("Tải thêm", "Load more"),
    "review.end": ("Hết danh sách", "End of the list"),
    "review.empty": ("Không có vi phạm nào khớp bộ lọc", "No violation matches the filters"),
    "review.loaded": ("Đã tải {n} vi phạm", "{n} violations loaded"),
    "review.bounded": (
        "Tìm gần đúng 2 ký tự quét từng khối: tải thêm để xem tiếp.",
        "Fuzzy distance 2 scans block by block: load more to go on.",
    ),
    "review.pick": ("Chọn một vi phạm trong danh sách", "Pick a violation in the list"),
    "review.shortcuts": ("Phím tắt", "Shortcuts"),
    "review.shortcuts_text": (
        "c: xác nhận · r: loại bỏ · j/n: tiếp · k/p: trước · /: tìm biển số",
        "c: confirm · r: reject · j/n: next · k/p: previous · /: search plate",
    ),
    # --- evidence viewer
    "ev.title": ("Bằng chứng vi phạm", "Violation evidence"),
    "ev.stills": ("Ảnh chụp", "Stills"),
    "ev.still_before": ("Trước", "Before"),
    "ev.still_at": ("Lúc vi phạm", "At the violation"),
    "ev.still_after": ("Sau", "After"),
    "ev.stills_note": (
        "Vạch dừng, vùng và trạng thái đèn được thiết bị vẽ lên ảnh.",
        "Stop line, zones and the light state are drawn on the stills by the device.",
    ),
    "ev.clip": ("Đoạn phim", "Clip"),
    "ev.clip_download": ("Tải đoạn phim (MP4)", "Download the clip (MP4)"),
    "ev.clip_note": (
        "Đoạn phim mã hoá MPEG-4 Part 2 (mp4v): trình duyệt Chromium/Chrome có thể không phát được. "
        "Hãy tải về và mở bằng VLC; các ảnh chụp ở trên là bằng chứng chính.",
        "The clip is MPEG-4 Part 2 (mp4v): Chromium/Chrome may not play it. Download it and open it "
        "in VLC; the stills above are the main evidence.",
    ),
    "ev.no_clip": ("Không có đoạn phim", "No clip"),
    "ev.purged": (
        "Bằng chứng đã bị xoá theo thời hạn lưu trữ.",
        "The evidence was deleted by the retention policy.",
    ),
    "ev.plate": ("Biển số", "Plate"),
    "ev.plate_crop": ("Ảnh biển số (phóng to)", "Plate crop (enlarged)"),
    "ev.plate_reading": ("Kết quả đọc", "Reading"),
    "ev.plate_confidence": ("Độ tin cậy", "Confidence"),
    "ev.plate_alternatives": ("Cách đọc khác", "Alternative readings"),
    "ev.plate_colour": ("Màu biển", "Plate colour"),
    "ev.plate_lines": ("Số dòng", "Lines"),
    "ev.plate_valid": ("Đúng định dạng", "Valid format"),
    "ev.plate_invalid": ("Sai định dạng", "Invalid format"),
    "ev.plate_unread": ("Không đọc được biển số", "Plate not read"),
    "ev.plate_corrected": ("Đã sửa thành", "Corrected to"),
    "ev.plate_edit": ("Sửa biển số", "Correct the plate"),
    "ev.class_edit": ("Sửa loại xe", "Correct the vehicle class"),
    "ev.class_edit_hint": (
        "Chọn loại xe đúng nếu camera nhận dạng sai; mức phạt tính theo loại xe này khi xác nhận.",
        "Pick the right class if the camera got it wrong; the confirmation fines this class.",
    ),
    "ev.class_corrected": ("đã sửa; camera nhận dạng: {d}", "corrected; the camera saw: {d}"),
    "ev.plate_edit_hint": (
        "Biển số được kiểm tra theo quy định khi xác nhận (vd 30A-123.45).",
        "Checked against the plate rules when you confirm (e.g. 30A-123.45).",
    ),
    "ev.plate_ok": ("Hợp lệ:", "Valid:"),
    "ev.details": ("Thông tin", "Details"),
    "ev.time": ("Thời điểm", "Time"),
    "ev.camera": ("Camera", "Camera"),
    "ev.district": ("Quận/huyện", "District"),
    "ev.vehicle": ("Phương tiện", "Vehicle"),
    "ev.signal": ("Đèn tín hiệu", "Traffic light"),
    "ev.red_for": ("đỏ được {s} giây", "red for {s} s"),
    "ev.speed": ("Tốc độ", "Speed"),
    "ev.legal": ("Căn cứ pháp lý", "Legal basis"),
    # The note under the legal basis when it is not the citation the device signed (review.js).
    "ev.legal_device": ("Thiết bị ghi căn cứ khác: {c}.", "The device wrote another citation: {c}."),
    "ev.legal_device_wrong": (
        "Danh mục pháp lý không có căn cứ này cho loại xe camera nhận dạng ({d}): bảng căn cứ pháp lý "
        "của thiết bị có thể sai, cần báo bộ phận kỹ thuật.",
        "The legal catalogue has no such citation for the class the camera saw ({d}): the device's "
        "decree table may be wrong; tell the technical staff.",
    ),
    "ev.legal_device_class": (
        "Đó là căn cứ cho loại xe camera nhận dạng ({d}); vi phạm được xử phạt theo loại xe đã sửa.",
        "That is the citation for the class the camera saw ({d}); the violation is fined as the "
        "corrected class.",
    ),
    "ev.legal_device_amended": (
        "Quy định có hiệu lực vào ngày vi phạm ghi căn cứ khác.",
        "The rules in force on the violation's day cite another point.",
    ),
    "ev.legal_stated": (
        "Thông báo gửi chủ xe ghi căn cứ và mức phạt ở trên.",
        "The owner's notice states the citation and fine above.",
    ),
    "ev.legal_none": (
        "Danh mục pháp lý không có mục cho vi phạm này (loại vi phạm, loại xe, ngày vi phạm): thông báo "
        "gửi chủ xe ghi căn cứ do thiết bị ghi và không ghi mức phạt. Kiểm tra lại loại xe trước khi "
        "xác nhận.",
        "The legal catalogue has no entry for this violation (rule, vehicle class, day): the owner's "
        "notice states the device's citation and no fine. Check the vehicle class before confirming.",
    ),
    "ev.fine": ("Mức phạt", "Fine"),
    "ev.points": ("Trừ điểm GPLX", "Licence points"),
    "ev.integrity": ("Toàn vẹn bằng chứng", "Evidence integrity"),
    "ev.sig_ok": (
        "Chữ ký số hợp lệ (Ed25519, thiết bị {d}); các tệp và thông tin vi phạm khớp với bản đã ký.",
        "Signature valid (Ed25519, device {d}); the files and the violation's details match what was signed.",
    ),
    "ev.sig_bad": ("KHÔNG hợp lệ: {why}", "NOT valid: {why}"),
    "ev.package": ("Gói bằng chứng đã ký", "Signed evidence package"),
    "ev.package_download": ("Tải gói bằng chứng đã ký (ZIP)", "Download the signed evidence package (ZIP)"),
    "ev.package_hint": (
        "Kiểm tra độc lập với máy chủ: giải nén, rồi chạy "
        "phatnguoi evidence verify THƯ_MỤC --public-key device_public_key.pem",
        "Check it without trusting the server: unzip, then run "
        "phatnguoi evidence verify FOLDER --public-key device_public_key.pem",
    ),
    "ev.decision": ("Quyết định", "Decision"),
    "ev.confirm": ("Xác nhận vi phạm", "Confirm violation"),
    "ev.reject": ("Loại bỏ", "Reject"),
    "ev.reopen": ("Mở lại", "Reopen"),
    "ev.reopen_note": ("Lý do mở lại", "Why reopen"),
    "ev.decided": ("{status} bởi {by} lúc {at}", "{status} by {by} at {at}"),
    "ev.pending_confirm": (
        "Quyết định xác nhận chưa được lưu vì phiên đăng nhập đã hết hạn. "
        "Các thông tin đã nhập được giữ lại: kiểm tra rồi gửi lại.",
        "The confirmation was not saved: the session had expired. What you entered is kept: check it "
        "and send it again.",
    ),
    "ev.pending_reject": (
        "Quyết định loại bỏ chưa được lưu vì phiên đăng nhập đã hết hạn. "
        "Các thông tin đã nhập được giữ lại: kiểm tra rồi gửi lại.",
        "The rejection was not saved: the session had expired. What you entered is kept: check it "
        "and send it again.",
    ),
    "ev.confirmed_ok": ("Đã xác nhận vi phạm #{id}", "Violation #{id} confirmed"),
    "ev.rejected_ok": ("Đã loại bỏ vi phạm #{id}", "Violation #{id} rejected"),
    "ev.reopened_ok": ("Đã mở lại vi phạm #{id}", "Violation #{id} reopened"),
    "ev.reason": ("Lý do loại bỏ", "Reason for rejecting"),
    "ev.reject_for": ("Vi phạm #{id}", "Violation #{id}"),
    "ev.note": ("Ghi chú", "Note"),
    "ev.note_required": ("Cần ghi chú khi chọn “Lý do khác”", "A note is needed with “Other”"),
    "ev.reject_submit": ("Loại bỏ vi phạm", "Reject violation"),
    "reason.plate_unreadable": ("Không đọc được biển số", "Plate unreadable"),
    "reason.not_a_violation": ("Không phải vi phạm", "Not a violation"),
    "reason.emergency_vehicle": ("Xe ưu tiên", "Emergency vehicle"),
    "reason.duplicate": ("Trùng lặp", "Duplicate"),
    "reason.other": ("Lý do khác", "Other"),
    "ev.enlarge": ("Phóng to", "Enlarge"),
    # --- owner notice (Circular 73/2024/TT-BCA) and SMS alert
    "notice.title": ("Thông báo vi phạm", "Owner notice"),
    "notice.none": (
        "Chưa có thông báo (được lập khi vi phạm được xác nhận).",
        "No notice yet (made when the violation is confirmed).",
    ),
    "notice.state": ("Trạng thái thông báo", "Notice state"),
    "notice.code": ("Mã tra cứu", "Lookup code"),
    "notice.code_unknown": ("Không hiển thị được", "Cannot be shown"),
    "notice.due": ("Hạn gửi thông báo (10 ngày)", "Send the notice by (10 days)"),
    "notice.escalate": ("Hạn báo cơ quan đăng ký (20 ngày)", "Warn the registration bodies by (20 days)"),
    "notice.escalate_pending": ("Tính từ ngày gửi bưu điện", "Counted from posting"),
    "notice.next": ("Việc cần làm", "Next action"),
    "notice.overdue": ("Quá hạn", "Overdue"),
    "notice.posted_at": ("Gửi bưu điện lúc", "Posted at"),
    "notice.sms": ("Tin nhắn SMS", "SMS alert"),
    "notice.sms_none": (
        "Không có SMS (chủ xe chưa có số điện thoại, chưa tìm thấy chủ xe, hoặc chưa bật SMS)",
        "No SMS (no phone for the owner, owner not found yet, or SMS not enabled)",
    ),
    "notice.sms_attempts": ("{n} lần gửi", "{n} attempts"),
    "notice.sms_error": ("Lỗi gần nhất: {e}", "Last error: {e}"),
    "notice.mark_posted": ("Đánh dấu đã gửi bưu điện", "Mark as sent by post"),
    "notice.posted_ok": ("Đã ghi nhận gửi bưu điện thông báo #{id}", "Notice #{id} marked as posted"),
    "notice.pdf": ("In thông báo (PDF)", "Print the notice (PDF)"),
    "nstate.awaiting_owner": ("Chờ xác định chủ xe", "Waiting for the owner"),
    "nstate.created": ("Đã lập thông báo", "Notice created"),
    "nstate.sms_sent": ("Đã gửi SMS", "SMS sent"),
    "nstate.posted": ("Đã gửi bưu điện", "Sent by post"),
    "nstate.responded": ("Chủ xe đã phản hồi", "Owner responded"),
    "nstate.escalated_20d": ("Đã báo cơ quan đăng ký (quá 20 ngày)", "Registration bodies warned (20 days)"),
    "nstate.closed": ("Đã đóng", "Closed"),
    "sms.pending": ("Đang chờ gửi", "Queued"),
    "sms.sent": ("Đã gửi", "Sent"),
    "sms.delivered": ("Đã đến máy", "Delivered"),
    "sms.failed": ("Gửi thất bại", "Failed"),
    "sms.cancelled": ("Đã huỷ", "Cancelled"),
    # --- messages to the penalty system (the signed webhook of api/webhook.py)
    "penalty.title": ("Tin gửi hệ thống xử phạt", "Messages to the penalty system"),
    "penalty.none": (
        "Chưa có tin nào gửi hệ thống xử phạt (tin được gửi khi vi phạm được xác nhận).",
        "No message to the penalty system (one is sent when the violation is confirmed).",
    ),
    "penalty.kind": ("Loại tin", "Message"),
    "penalty.status": ("Trạng thái", "Status"),
    "penalty.time": ("Thời điểm", "Time"),
    "penalty.attempts": ("Số lần gửi", "Attempts"),
    "penalty.delivered_at": ("Đã nhận lúc {t}", "Delivered at {t}"),
    "penalty.retry_at": ("Gửi lại lúc {t}", "Next try at {t}"),
    "penalty.error": ("Lỗi gần nhất: {e}", "Last error: {e}"),
    "pkind.confirmed": ("Chuyển xử phạt", "Confirmation"),
    "pkind.withdrawn": ("Thu hồi", "Withdrawal"),
    "pstatus.pending": ("Đang chờ gửi", "Queued"),
    "pstatus.delivered": ("Đã gửi", "Delivered"),
    "pstatus.failed": ("Gửi thất bại, đã ngừng thử", "Failed, given up"),
    "pstatus.cancelled": ("Đã huỷ, không gửi", "Cancelled, not sent"),
    "action.find_owner": ("Xác định chủ xe", "Find the owner"),
    "action.send_notice": ("Gửi thông báo", "Send the notice"),
    "action.escalate": ("Thông báo cơ quan đăng ký", "Warn the registration bodies"),
    "due.title": ("Thông báo cần xử lý", "Notices: due actions"),
    "due.intro": (
        "Thông báo phải gửi trong 10 ngày kể từ ngày vi phạm; quá 20 ngày kể từ khi gửi mà chủ xe "
        "không phản hồi thì thông báo cho cơ quan đăng ký, đăng kiểm (Thông tư 73/2024/TT-BCA).",
        "Notices must be sent within 10 days of the violation; 20 days after sending without a response "
        "the registration and inspection bodies are warned (Circular 73/2024/TT-BCA).",
    ),
    "due.violation": ("Vi phạm", "Violation"),
    "due.plate": ("Biển số", "Plate"),
    "due.time": ("Thời điểm vi phạm", "Violation time"),
    "due.state": ("Trạng thái", "State"),
    "due.action": ("Việc cần làm", "Action"),
    "due.at": ("Hạn", "Due"),
    "due.empty": ("Không có việc nào đến hạn.", "Nothing is due."),
    "due.count": ("{n} việc", "{n} actions"),
    # A notice held for a supervisor (`hold_reason`, Vietnamese from the server: why, and what to do).
    "due.held_action": ("Xem lại loại xe, biển số", "Review the vehicle class, the plate"),
    "due.held": ("Đang giữ lại, chưa gửi cho chủ xe:", "Held, not sent to the owner:"),
    "due.held_registry": (
        "Nếu đăng ký xe ghi sai loại xe: quản trị viên sửa tệp đăng ký và nhập lại, thông báo sẽ được "
        "lập cho chủ xe.",
        "If the registry has the wrong vehicle class: an admin corrects the registry file and imports it "
        "again, and the notice goes to the owner.",
    ),
    # --- vehicle registry import (admins; api/notices/registry.py)
    "import.title": ("Nhập dữ liệu đăng ký xe", "Import the vehicle registry"),
    "import.intro": (
        "Tệp CSV (UTF-8) có dòng tiêu đề. Cột bắt buộc: plate, owner_name, phone; cột không bắt buộc: "
        "national_id, address, vehicle_class, colour, make. Dòng có lỗi được bỏ qua và liệt kê bên dưới; "
        "các dòng đúng vẫn được nhập.",
        "A CSV file (UTF-8) with a header row. Required columns: plate, owner_name, phone; optional: "
        "national_id, address, vehicle_class, colour, make. Rows with an error are skipped and listed "
        "below; the good rows are imported.",
    ),
    "import.file": ("Tệp CSV", "CSV file"),
    "import.submit": ("Nhập dữ liệu", "Import"),
    "import.summary": (
        "Thêm mới {created} xe, cập nhật {updated} xe, bỏ qua {rejected} dòng có lỗi.",
        "{created} vehicles added, {updated} updated, {rejected} rows with an error skipped.",
    ),
    "import.notices": (
        "Đã tìm được chủ xe cho {found} thông báo đang chờ; lập mới {made} thông báo.",
        "Owners found for {found} waiting notices; {made} notices made.",
    ),
    "import.rejected": ("Các dòng bị bỏ qua", "Rows not imported"),
    "import.line": ("Dòng", "Line"),
    "import.plate": ("Biển số trong tệp", "Plate as written"),
    "import.reason": ("Lý do", "Reason"),
    "lookup.notice": ("Thông báo vi phạm", "Notice"),
    # --- statistics
    "stats.title": ("Thống kê", "Statistics"),
    "stats.total": ("Tổng số vi phạm", "Violations"),
    "stats.confirmation_rate": ("Tỷ lệ xác nhận", "Confirmation rate"),
    "stats.plate_read_rate": ("Tỷ lệ đọc được biển", "Plate read rate"),
    "stats.flow_total": ("Lưu lượng xe", "Vehicles counted"),
    "stats.by_rule": ("Theo loại vi phạm", "By violation type"),
    "stats.by_camera": ("Theo camera", "By camera"),
    "stats.by_district": ("Theo quận/huyện", "By district"),
    "stats.by_hour": ("Theo giờ trong ngày", "By hour of day"),
    "stats.by_day": ("Theo ngày", "By day"),
    "stats.flow_by_class": ("Lưu lượng theo loại xe", "Traffic flow by vehicle class"),
    "stats.flow_by_hour": ("Lưu lượng theo giờ", "Traffic flow by hour"),
    "stats.csv": ("Tải CSV thống kê", "Download statistics CSV"),
    "stats.export": ("Tải danh sách vi phạm đã xác nhận (CSV)", "Download confirmed violations (CSV)"),
    "stats.key": ("Nhóm", "Group"),
    "stats.count": ("Số lượng", "Count"),
    "stats.chart_of": ("Biểu đồ: {title}", "Chart: {title}"),
    "stats.no_data": ("Không có dữ liệu", "No data"),
    "stats.day_recent": (
        "Chỉ hiện {n} ngày gần nhất của khoảng thời gian",
        "Only the last {n} days of the period",
    ),
    # --- public lookup
    "lookup.title": ("Tra cứu vi phạm", "Look up a violation"),
    "lookup.intro": (
        "Nhập biển số và mã tra cứu trong tin nhắn thông báo vi phạm.",
        "Enter the plate and the lookup code from the violation notice.",
    ),
    "lookup.plate": ("Biển số xe", "Plate"),
    "lookup.code": ("Mã tra cứu", "Lookup code"),
    "lookup.submit": ("Tra cứu", "Look up"),
    "lookup.not_found": (
        "Không tìm thấy vi phạm với biển số và mã tra cứu này.",
        "No violation with this plate and lookup code.",
    ),
    "lookup.rate_limited": ("Quá nhiều lượt tra cứu, vui lòng thử lại sau.", "Too many lookups; try later."),
    "lookup.withdrawn": (
        "Thông báo gửi cho biển số này đã được thu hồi: khi xem xét, cán bộ đã sửa biển số của vi phạm "
        "sang xe khác. Xe của bạn không liên quan đến vi phạm này.",
        "The notice for this plate was withdrawn: on review the violation's plate was corrected to another "
        "vehicle. Your vehicle is not concerned.",
    ),
    "lookup.corrected": (
        "Biển số trong thông báo ({from}) đã được cán bộ sửa thành {to} khi xem xét.",
        "The plate in the notice ({from}) was corrected to {to} on review.",
    ),
    "lookup.result": ("Kết quả tra cứu", "Result"),
    "lookup.time": ("Thời gian", "Time"),
    "lookup.place": ("Địa điểm", "Place"),
    "lookup.type": ("Hành vi vi phạm", "Violation"),
    "lookup.status": ("Trạng thái", "Status"),
    "lookup.privacy": (
        "Trang này chỉ hiện vi phạm ứng với mã tra cứu; không hiện thông tin chủ xe.",
        "This page shows only the violation of the code; never owner data.",
    ),
}


#: The API's error messages an officer can meet in the web app, in Vietnamese. The API speaks English
#: (to devices, scripts and the penalty system); the pages show these instead. Each entry is a regular
#: expression over the whole English message (the same syntax in Python and JavaScript) and a template
#: whose {1}, {2}… are its groups, themselves translated when they are messages of this table (the
#: reason of an invalid plate). A message not in the table is shown as it is.
_ERRORS_VI: Final[tuple[tuple[str, str], ...]] = (
    # login and access
    (r"^wrong username or password$", "Sai tên đăng nhập hoặc mật khẩu"),
    (r"^too many failed logins; try again in (\d+) s$", "Đăng nhập sai quá nhiều lần; thử lại sau {1} giây"),
    (r"^officers see only their own district$", "Cán bộ chỉ xem được vi phạm thuộc quận/huyện của mình"),
    (r"^needs role (.+)$", "Cần quyền: {1}"),
    (r"^admin only$", "Chỉ quản trị viên được làm việc này"),
    # review
    (
        r"^violation (\d+) changed meanwhile; try again$",
        "Vi phạm #{1} vừa được người khác thay đổi; hãy thử lại",
    ),
    (
        r"^violation (\d+) is already confirmed; a supervisor can reopen it$",
        "Vi phạm #{1} đã được xác nhận; chỉ huy có thể mở lại để duyệt lại",
    ),
    (
        r"^violation (\d+) is already rejected; a supervisor can reopen it$",
        "Vi phạm #{1} đã bị loại bỏ; chỉ huy có thể mở lại để duyệt lại",
    ),
    (r"^violation (\d+) is not decided$", "Vi phạm #{1} chưa được xử lý"),
    (
        r"^violation (\d+) was decided, or its evidence deleted, meanwhile$",
        "Vi phạm #{1} vừa được xử lý, hoặc bằng chứng vừa bị xoá",
    ),
    (
        r"^violation (\d+): its evidence was deleted \(retention\); it cannot be reviewed again$",
        "Vi phạm #{1}: bằng chứng đã bị xoá (hết thời hạn lưu trữ), không thể duyệt lại",
    ),
    (
        r"^violation (\d+): its evidence was deleted \(retention\); it can only be rejected$",
        "Vi phạm #{1}: bằng chứng đã bị xoá (hết thời hạn lưu trữ), chỉ có thể loại bỏ",
    ),
    (
        r"^violation (\d+): its evidence is not what the device signed \((.+)\); it can only be rejected$",
        "Vi phạm #{1}: bằng chứng không khớp với bản thiết bị đã ký ({2}); chỉ có thể loại bỏ",
    ),
    (r"^violation (\d+) not found$", "Không tìm thấy vi phạm #{1}"),
    (r"^violation not found$", "Không tìm thấy vi phạm"),
    (r"^violation (\d+) has no file (.+)$", "Vi phạm #{1} không có tệp {2}"),
    (r"^violation (\d+) is (\w+), not confirmed$", "Vi phạm #{1} chưa được xác nhận"),
    (
        r"^a violation without a plate cannot be confirmed: give the plate$",
        "Không thể xác nhận vi phạm khi chưa có biển số: hãy nhập biển số",
    ),
    (
        r"^the plate read by the device \(['\"](.*)['\"]\) is not a valid Vietnamese plate: (.+); "
        r"type the plate$",
        "Biển số thiết bị đọc được ({1}) không hợp lệ: {2}; hãy nhập biển số",
    ),
    (r"^plate ['\"](.*)['\"] is not a valid Vietnamese plate: (.+)$", "Biển số {1} không hợp lệ: {2}"),
    (
        r"^plate ['\"](.*)['\"] is not exactly a plate; did you mean (.+)\?$",
        "{1} chưa đúng dạng biển số; có phải là {2}?",
    ),
    (r"^fuzzy needs a plate$", "Tìm gần đúng cần nhập biển số"),
    # the plate search (api/plate_query.py)
    (r"^plate query is empty$", "Biển số cần tìm chưa có ký tự nào"),
    (r"^plate query longer than (\d+) characters$", "Biển số cần tìm dài quá {1} ký tự"),
    (
        r"^plate query may hold only letters, digits, '\*' and '\?'$",
        "Biển số cần tìm chỉ gồm chữ cái, chữ số, * và ?",
    ),
    (r"^a fuzzy plate query cannot contain '\*' or '\?'$", "Tìm gần đúng không dùng được ký tự * hoặc ?"),
    (
        r"^a wildcard query needs at least (\d+) plate characters$",
        "Tìm với * hoặc ? cần ít nhất {1} ký tự của biển số",
    ),
    # a filter's dates (422 of api/app.py: "<where>: <what>", " (and N more)" when several)
    (r"^query\.from: (.+?)(?: \(and \d+ more\))?$", "Từ ngày: {1}"),
    (r"^query\.to: (.+?)(?: \(and \d+ more\))?$", "Đến ngày: {1}"),
    (r"^year must be within 1900\.\.9000$", "năm phải trong khoảng 1900–9000"),
    (r"^from is later than to$", "Từ ngày không được sau Đến ngày"),
    # the live check of a typed plate (api/web/routes.py `plate_check`)
    (
        r"^not a valid Vietnamese plate as typed; did you mean (.+)\?$",
        "Chưa đúng dạng biển số; có phải là {1}?",
    ),
    # why a device's reading is not a plate (api/services/violations.py `checked_reading`)
    (r"^no plate read$", "không đọc được biển số"),
    (
        r"^not a plate as written \(the grammar reads (.+)\)$",
        "không đúng dạng biển số như đã ghi (đọc theo quy định: {1})",
    ),
    (r"^it is recorded as another plate, (.+)$", "được ghi nhận là một biển số khác: {1}"),
    # why a plate is invalid (plates.grammar.vn)
    (r"^empty reading$", "chưa có ký tự nào"),
    (r"^expected 1 or 2 text lines, got (\d+)$", "biển số có 1 hoặc 2 dòng, ở đây có {1}"),
    (r"^too short for a plate: ['\"](.*)['\"]$", "quá ngắn: {1}"),
    (
        r"^temporary plate needs 5 digits after the province code, got (\d+)$",
        "biển tạm cần 5 chữ số sau mã tỉnh, ở đây có {1}",
    ),
    (r"^no province code: plate starts with ['\"](.*)['\"]$", "không có mã tỉnh: biển bắt đầu bằng {1}"),
    (r"^unknown province code (\S+)$", "không có mã tỉnh {1}"),
    (
        r"^series must start with a letter, got ['\"](.*)['\"]$",
        "sê-ri phải bắt đầu bằng chữ cái, ở đây là {1}",
    ),
    (r"^no series after the code$", "thiếu sê-ri sau mã tỉnh"),
    (r"^letter (\S+) is never used in a series$", "chữ {1} không dùng trong sê-ri"),
    (r"^series (\S+) exists only on old plates with 4 digits$", "sê-ri {1} chỉ có trên biển cũ 4 số"),
    (r"^R starts no series except R, RM and the old R1-R9$", "chữ R chỉ dùng cho sê-ri R, RM và R1–R9 cũ"),
    (
        r"^foreign series (\S+) needs a 3-digit country code and a 2- or 3-digit order$",
        "sê-ri nước ngoài {1} cần mã nước 3 số và số thứ tự 2 hoặc 3 số",
    ),
    (r"^series (\S+) is not a plate series$", "{1} không phải sê-ri biển số"),
    (r"^series digit must be 1-9, got 0$", "số trong sê-ri phải từ 1 đến 9"),
    (r"^series (\S+) has too many digits$", "sê-ri {1} có quá nhiều chữ số"),
    (r"^unexpected letter (\S+) in the number$", "có chữ {1} trong phần số"),
    (r"^expected 4 or 5 digits, got (\d+)$", "phần số cần 4 hoặc 5 chữ số, ở đây có {1}"),
    (r"^separator inside the province code or series$", "có dấu phân cách trong mã tỉnh hoặc sê-ri"),
    (r"^no plate layout fits ['\"](.*)['\"]$", "không khớp dạng biển số nào: {1}"),
    (r"^number (\S+) is never issued$", "số {1} không được cấp"),
    # notices and the owner registry
    (r"^notice not found$", "Không tìm thấy thông báo"),
    (r"^code does not match this notice$", "Mã tra cứu không khớp với thông báo này"),
    (r"^notice (\d+) is (\w+), not awaiting_owner$", "Thông báo #{1} không còn ở bước chờ xác định chủ xe"),
    (r"^notice (\d+): (\w+) → (\w+) is not allowed$", "Thông báo #{1}: không được chuyển sang bước này"),
    (
        r"^notice (\d+): its violation is back under review; the notice waits for the new decision$",
        "Thông báo #{1}: vi phạm đang được duyệt lại; thông báo chờ quyết định mới",
    ),
    (
        r"^notice (\d+): its violation was rejected; there is no fine to print$",
        "Thông báo #{1}: vi phạm đã bị loại bỏ; không có quyết định phạt để in",
    ),
    (
        r"^notice (\d+) waits for its owner; it is printed once it has one$",
        "Thông báo #{1} đang chờ xác định chủ xe; chỉ in được khi đã có chủ xe",
    ),
    (r"^notice (\d+) is closed; it is not printed$", "Thông báo #{1} đã đóng; không in thông báo này"),
    (
        r"^vehicle class '(.+)': the legal catalogue has no single offence of rule '(.+)' for it; "
        r"reject the violation instead$",
        "Không có mức phạt của hành vi này cho loại xe đã chọn; hãy loại bỏ vi phạm",
    ),
    (r"^notice PDF unavailable: (.+)$", "Chưa tạo được bản PDF của thông báo: {1}"),
    (r"^registry CSV: missing column\(s\) (.+)$", "Tệp CSV đăng ký xe thiếu cột: {1}"),
    # why a row of a registry CSV was not imported (api/notices/registry.py; column names as in the file)
    (r"^NUL character in a field$", "Có ký tự NUL trong một ô"),
    (r"^(\w+) longer than (\d+) characters$", "Cột {1} dài quá {2} ký tự"),
    (r"^missing plate$", "Thiếu biển số"),
    (r"^unknown plate format$", "Biển số không đúng định dạng"),
    (r"^missing owner name$", "Thiếu họ tên chủ xe"),
    (r"^missing phone$", "Thiếu số điện thoại"),
    (
        r"^invalid phone \(not a Vietnamese mobile number\)$",
        "Số điện thoại không hợp lệ (không phải số di động Việt Nam)",
    ),
    (r"^invalid national id \(9 or 12 digits\)$", "Số định danh không hợp lệ (cần 9 hoặc 12 chữ số)"),
    (
        r"^unknown vehicle class ['\"](.*)['\"]$",
        "Loại xe {1} không hợp lệ (dùng car, bus, truck, motorcycle hoặc bicycle)",
    ),
    (r"^duplicate plate \(first on line (\d+)\)$", "Biển số trùng với dòng {1}"),
    (
        r"^national id given another name or phone on line (\d+)$",
        "Số định danh đã có ở dòng {1} với họ tên hoặc số điện thoại khác",
    ),
    (
        r"^national id registered under another name$",
        "Số định danh đã được đăng ký cho người có họ tên khác",
    ),
    (r"^registry CSV: (.+)$", "Tệp CSV đăng ký xe có lỗi: {1}"),
    (
        r"^evidence store unavailable(; retry later)?$",
        "Kho bằng chứng tạm thời không truy cập được; hãy thử lại sau",
    ),
)


def error_messages(lang: Lang) -> list[tuple[str, str]]:
    """The error-message table of `lang` for the pages (empty in English: the API's own words)."""
    return list(_ERRORS_VI) if lang == "vi" else []


def translate_error(message: str, lang: Lang) -> str:
    """What the pages show for the API's error `message` (`translateError` of common.js does the same)."""
    for pattern, template in error_messages(lang):
        found = re.match(pattern, message)
        if found is not None:
            text = template
            for k, group in enumerate(found.groups(), start=1):
                text = text.replace(f"{{{k}}}", translate_error(group or "", lang))
            return text
    return message


def labels(lang: Lang) -> dict[str, str]:
    """Every label in `lang` (a new dict)."""
    i = LANGS.index(lang)
    return {key: pair[i] for key, pair in _LABELS.items()}


def pick_lang(cookie: str | None) -> Lang:
    """The language named by the cookie, else Vietnamese."""
    return "en" if cookie == "en" else DEFAULT_LANG


class Translator:
    """`t("key")` in templates: the label in one language; an unknown key shows itself (visible in
    tests and screenshots instead of an empty space)."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang
        self.table: Mapping[str, str] = labels(lang)

    def __call__(self, key: str, **params: object) -> str:
        text = self.table.get(key, key)
        for name, value in params.items():
            text = text.replace("{" + name + "}", str(value))
        return text
