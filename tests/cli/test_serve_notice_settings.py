"""`phatnguoi serve` on bad notice (SMS) settings, as an operator meets them: a real subprocess, one
line naming the variable and what is wrong with it, exit code 1, no traceback.

No notice setting is a list or a table, so none is decoded as JSON by pydantic-settings (whose own
error, for `PHATNGUOI_UPLOAD_MEDIA_TYPES`, is tested in test_server_errors.py): the JSON template
``PHATNGUOI_SMS_GATEWAY_BODY`` is a string its validator checks. Its line used to carry pydantic's
``Value error, `` in the middle ("PHATNGUOI_SMS_GATEWAY_BODY: Value error, not JSON: ...").
"""

from __future__ import annotations

import pytest

from tests.cli.test_cli import assert_one_line_error
from tests.cli.test_server_cli import run
from tests.cli.test_server_errors import argv


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "PHATNGUOI_SMS_GATEWAY_BODY",
            '{"to": "{to}", "text": ',
            "error: notice settings: PHATNGUOI_SMS_GATEWAY_BODY: not JSON: Expecting value: line 1 column 24"
            " (char 23)",
        ),
        (
            "PHATNGUOI_SMS_GATEWAY_BODY",
            '["{to}", "{text}"]',
            "error: notice settings: PHATNGUOI_SMS_GATEWAY_BODY: must be a JSON object whose values are"
            " strings",
        ),
        (
            "PHATNGUOI_SMS_QUIET_START",
            "25:00",
            "error: notice settings: PHATNGUOI_SMS_QUIET_START: Input should be in a valid time format,"
            " hour value is outside expected range of 0-23",
        ),
        (
            "PHATNGUOI_SMS_MAX_SEGMENTS",
            "[3]",
            "error: notice settings: PHATNGUOI_SMS_MAX_SEGMENTS: Input should be a valid integer, unable to"
            " parse string as an integer",
        ),
    ],
    ids=["body-not-json", "body-a-list", "quiet-hour-25", "segments-json"],
)
def test_serve_with_a_bad_notice_setting(
    server_env: dict[str, str], variable: str, value: str, line: str
) -> None:
    assert run(["db", "upgrade"], server_env).returncode == 0
    proc = run(argv(["serve"]), {**server_env, variable: value})
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc)
    assert proc.stderr.strip() == line
