"""What the report builder's browser tests share (tests/reports_app/test_*_browser.py, the production-mode ones in
tests/test_builder_production.py): sign in, wait for Plotly's chart, save a report and reopen it, ask the API
from the browser's side. Each takes the page and the server's base URL, so the development server of
pytest-django's live_server and gunicorn in production mode use the same steps."""

from pathlib import Path
from urllib.parse import urlencode

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"  # screenshots


def log_in(page, base_url: str, username: str, password: str, next_path: str = "/reports/") -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}*")


# The control each report type's part of the builder shows first, once the type is chosen.
FIRST_CONTROL = {"funnel": "#funnel-steps", "retention": "#start-event"}


def choose_type(page, report_type: str) -> None:
    """The builder switched to `report_type` ("funnel" or "retention") by its type switch."""
    page.click(f"#type-{report_type}")
    page.wait_for_selector(FIRST_CONTROL[report_type])


def open_builder(page, base_url: str, report_type: str, username: str = "pm", password: str = "pw-123456") -> None:
    """Signed in (the tests' user `pm`), the builder switched to `report_type`."""
    log_in(page, base_url, username, password)
    choose_type(page, report_type)


def wait_for_chart(page, timeout: int = 20000) -> list[str]:
    """The names of the traces Plotly drew."""
    page.wait_for_selector("#chart[data-rendered=true] svg.main-svg", state="attached", timeout=timeout)
    return page.evaluate("document.getElementById('chart').data.map(trace => trace.name)")


def save_report(page, name: str) -> None:
    page.fill("#report-name", name)
    page.click("#save-new")
    page.wait_for_selector(f"text=Saved “{name}”")


def reopen(page, base_url: str, name: str, app_id: str = "") -> None:
    """Open the saved report `name` from the list of saved reports, as a user would."""
    page.goto(f"{base_url}/reports/" + (f"?env={app_id}" if app_id else ""))
    page.click(f"#saved-reports >> text={name}")
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == name


def api_get(page, base_url: str, path: str, params: dict, api_key: str) -> dict:
    answer = page.request.get(
        f"{base_url}{path}?{urlencode(params, doseq=True)}", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert answer.status == 200, answer.text()[:500]
    return answer.json()
