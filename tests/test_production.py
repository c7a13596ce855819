"""Production as docs/operations.md writes it, end to end (SPEC 9): `collectstatic`, gunicorn with DEBUG unset
and the documented production variables (HTTPS, secure cookies, HSTS), a Celery worker
and beat on real Redis, real PostgreSQL; a real Chromium uses the demo site (the tracker sends, a login on a
second device merges, the worker moves it) and the dashboard (Reports draws its chart, the Users view and the
admin get every asset).

TLS is terminated by gunicorn itself here (`--certfile/--keyfile`, a throw-away certificate: the recipe's "TLS
in gunicorn" variant), so the browser speaks https. The proxy variant's headers are tested in-process
(tests/test_deploy_settings.py, tests/users_app/test_client_ip.py). Screenshots go to test-output/production-*.png."""

import json
import os
import secrets
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import REPO, BackgroundProcess, free_port, wait_for, worker_environment
from tests.reports_app.browser import log_in as browser_log_in

OUTPUT = REPO / "test-output"
APP_ID = "3141592653"
API_KEY = "production-test-key-0123456789"
ADMIN_PASSWORD = "production-admin-pw-1"
UNVERIFIED_TLS = ssl._create_unverified_context()  # the throw-away certificate below

pytestmark = [
    # The data is the module fixture's, committed; this only makes pytest-django set up the test database (the
    # tests themselves read and write through HTTP, from other processes).
    pytest.mark.django_db,
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="production runs real workers on Redis"),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="production runs on PostgreSQL"
    ),
]


def production_variables(static_root: Path, port: int) -> dict:
    """docs/operations.md's production variables, pointed at the test database and this machine, and nothing
    else from the test process (whose environment has test-only switches such as DJANGO_ALLOW_ASYNC_UNSAFE)."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": worker_environment()["DATABASE_URL"],
            "REDIS_URL": os.environ["REDIS_URL"],
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": f"https://127.0.0.1:{port}",
            # docs/operations.md's set for TLS in gunicorn: no proxy in front, so no proxy header is trusted.
            "CAIRN_HTTPS": "1",
            "CAIRN_HSTS_INCLUDE_SUBDOMAINS": "1",
            "CAIRN_HSTS_PRELOAD": "1",
            "DB_CONN_MAX_AGE": "60",
            "STATIC_ROOT": str(static_root),
            # Off by default in production; on here because the demo site is what this test drives.
            "CAIRN_DEMO_SITE": "1",
            "CAIRN_MERGE_SWEEP_SECONDS": "2",  # so beat's sweep is seen within the test
        }
    )
    return env


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    key, certificate = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    return key, certificate


@dataclass
class Production:
    url: str
    env: dict
    static_root: Path
    web: BackgroundProcess
    worker: BackgroundProcess
    beat: BackgroundProcess

    def get(self, path: str, headers: dict | None = None):
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            return urllib.request.urlopen(request, context=UNVERIFIED_TLS, timeout=30)
        except urllib.error.HTTPError as error:
            return error

    def healthy(self) -> bool:
        try:
            return self.get("/healthz").status == 200
        except urllib.error.URLError:
            return False

    def read_api(self, path: str) -> dict:
        answer = self.get(path, {"Authorization": f"Bearer {API_KEY}"})
        assert answer.status == 200, answer.read()[:500]
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def production(django_db_setup, django_db_blocker, tmp_path_factory):
    folder = tmp_path_factory.mktemp("production")
    port = free_port()
    env = production_variables(folder / "staticfiles", port)
    manage = [sys.executable, "manage.py"]
    # The deploy steps, in docs/operations.md's order (the test database is migrated already).
    subprocess.run([*manage, "collectstatic", "--noinput", "--verbosity", "0"], cwd=REPO, env=env, check=True)
    subprocess.run(
        [*manage, "createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com"],
        cwd=REPO,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
        check=True,
    )
    subprocess.run(
        [*manage, "create_environment", "Pebble", "--app-id", APP_ID, "--api-key", API_KEY],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    key, certificate = self_signed_certificate(folder)
    bin_dir = Path(sys.executable).parent

    class Web(BackgroundProcess):
        name = "gunicorn"

    class Worker(BackgroundProcess):
        name = "celery-worker-production"

    class Beat(BackgroundProcess):
        name = "celery-beat"

    web = Web(
        [
            str(bin_dir / "gunicorn"),
            "config.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--certfile",
            str(certificate),
            "--keyfile",
            str(key),
        ],
        env=env,
        ready=lambda log: "Listening at" in log,
    )
    worker = Worker(
        [str(bin_dir / "celery"), "-A", "config", "worker", "--loglevel=INFO"],
        env=env,
        ready=lambda log: "ready" in log,
    )
    beat = Beat(
        [
            str(bin_dir / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(folder / "celerybeat-schedule"),
        ],
        env=env,
        ready=lambda log: "beat: Starting" in log,
    )
    started = []
    try:
        for process in (web, worker, beat):
            started.append(process.start())
        site = Production(
            url=f"https://127.0.0.1:{port}",
            env=env,
            static_root=folder / "staticfiles",
            web=web,
            worker=worker,
            beat=beat,
        )
        wait_for(site.healthy, timeout=30)
        yield site
    finally:
        for process in started:
            process.stop()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


class AssetLog:
    """Every static file a page asked for, with its answer."""

    def __init__(self, page):
        self.answers: dict[str, int] = {}
        self.failed: list[str] = []
        page.on("response", lambda response: self._record(response))
        page.on("requestfailed", lambda request: self.failed.append(request.url))

    def _record(self, response) -> None:
        if "/static/" in response.url:
            self.answers[response.url] = response.status

    def assert_whole(self, *must_include: str) -> None:
        assert not self.failed, self.failed
        assert self.answers and all(status == 200 for status in self.answers.values()), self.answers
        for fragment in must_include:
            assert any(fragment in url for url in self.answers), (fragment, sorted(self.answers))


def new_page(browser, width: int = 1300):
    context = browser.new_context(ignore_https_errors=True, viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, AssetLog(page), errors


def wait_tracker_idle(page) -> None:
    page.wait_for_function(
        "() => window.heap && window.heap._cairn === true && window.heap.pending() === 0", timeout=60_000
    )


def log_in(page, site: Production, next_path: str) -> None:
    """The admin signs in (tests/reports_app/browser.py), with a screenshot of the page if that fails."""
    try:
        browser_log_in(page, site.url, "admin", ADMIN_PASSWORD, next_path)
    except Exception:
        page.screenshot(path=str(OUTPUT / "production-login-failed.png"))
        raise


def test_the_demo_site_tracks_and_a_second_device_merges_through_the_real_worker(production, browser):
    demo = f"{production.url}/demo/{APP_ID}/"
    laptop, laptop_assets, laptop_errors = new_page(browser)
    laptop.goto(demo)
    wait_tracker_idle(laptop)
    laptop_assets.assert_whole("/static/cairn/tracker.min.js", "/static/cairn/demo.")
    laptop.goto(f"{demo}signup/")
    laptop.fill("#signup-email", "ada@example.com")
    laptop.check("input[name=plan][value=Startup]")
    laptop.click("#signup-submit")
    laptop.wait_for_url(f"{demo}app/")
    wait_tracker_idle(laptop)
    laptop.screenshot(path=str(OUTPUT / "production-demo.png"))

    ada = production.read_api("/api/v1/users?identity=ada%40example.com")
    assert ada["properties"]["plan"]["value"] == "Startup"
    names = [event["event"] for event in production.read_api(f"/api/v1/users/{ada['user_id']}/events")["results"]]
    assert "Sign Up" in names and names.count("pageview") == 3

    phone, _, phone_errors = new_page(browser, width=420)
    phone.goto(f"{demo}login/")
    wait_tracker_idle(phone)
    phone_user_id = phone.evaluate("() => window.heap.userId")
    phone.fill("#login-email", "ada@example.com")
    phone.click("#login-submit")
    phone.wait_for_url(f"{demo}app/")
    wait_tracker_idle(phone)
    assert phone.evaluate("() => window.heap.userId") == ada["user_id"]

    def merge_done():
        results = production.read_api("/api/v1/merges?identity=ada%40example.com")["results"]
        return results if results and results[0]["status"] == "done" else None

    merge = wait_for(merge_done, timeout=60)[0]
    assert (merge["source_user_id"], merge["destination_user_id"]) == (phone_user_id, ada["user_id"])
    assert "cairn.merge_apply" in production.worker.output()
    assert not laptop_errors and not phone_errors


def test_beat_publishes_the_sweep_and_the_worker_runs_it(production):
    wait_for(lambda: "cairn.merge_sweep" in production.beat.output(), timeout=30)
    wait_for(
        lambda: "Task cairn.merge_sweep" in production.worker.output() and "succeeded" in production.worker.output(),
        timeout=30,
    )


def test_the_reports_page_draws_its_chart(production, browser):
    page, assets, errors = new_page(browser)
    log_in(page, production, "/reports/")
    page.wait_for_selector("#chart[data-rendered=true] svg.main-svg", state="attached", timeout=30_000)
    page.screenshot(path=str(OUTPUT / "production-reports.png"))
    assets.assert_whole("/static/vendor/plotly-", "/static/cairn/reports.", "/static/cairn/cairn.")
    assert not errors


def test_the_users_view_and_the_admin_get_every_asset(production, browser):
    page, assets, errors = new_page(browser)
    log_in(page, production, "/users/")
    page.wait_for_selector("text=ada@example.com")
    page.screenshot(path=str(OUTPUT / "production-users.png"))
    assets.assert_whole("/static/cairn/users.", "/static/cairn/cairn.")
    page.goto(f"{production.url}/admin/")
    page.wait_for_selector("#site-name")
    # The admin's stylesheet was applied, not only answered: its header has the admin's colours.
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).display") == "flex"
    page.screenshot(path=str(OUTPUT / "production-admin.png"))
    assets.assert_whole("/static/admin/css/base.")
    assert not errors


def test_static_files_are_hashed_compressed_and_long_cached(production):
    manifest = json.loads((production.static_root / "staticfiles.json").read_text())["paths"]
    answer = production.get(f"/static/{manifest['cairn/cairn.css']}", {"Accept-Encoding": "gzip"})
    assert answer.status == 200 and answer.headers["Content-Encoding"] == "gzip"
    assert "immutable" in answer.headers["Cache-Control"] and "max-age=315360000" in answer.headers["Cache-Control"]


def test_the_tracker_keeps_its_plain_url_with_a_short_cache_for_any_site(production):
    answer = production.get(
        "/static/cairn/tracker.min.js", {"Origin": "https://shop.example.org", "Accept-Encoding": "gzip"}
    )
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/javascript")
    assert answer.headers["Cache-Control"] == "max-age=300, public"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert answer.headers["Content-Encoding"] == "gzip"


def test_https_settings_apply(production):
    login_page = production.get("/accounts/login/")
    assert login_page.status == 200
    assert login_page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    cookies = login_page.headers.get_all("Set-Cookie")
    assert cookies and all("Secure" in cookie for cookie in cookies)
    assert production.get("/healthz").status == 200
    favicon = production.get("/favicon.ico")  # redirected to the hashed file
    assert favicon.status == 200 and favicon.headers["Content-Type"] == "image/svg+xml"


def test_check_deploy_passes_with_the_documented_variables(production):
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=production.env,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    without_https = {**production.env, "CAIRN_HTTPS": "0"}
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=without_https,
        capture_output=True,
        text=True,
    )
    assert checked.returncode != 0 and "SECURE_SSL_REDIRECT" in checked.stderr + checked.stdout
