"""Drive one declaration through a running production stack over HTTP, as a school and a reviewer would.

Usage: python .ci/smoke.py http://127.0.0.1:PORT   (the environment must point `flask --app app` at the
same database and Redis as the server and the worker, since the outbox is read through the CLI).

Flow: the demo school logs in, completes 基础信息 if needed, declares and submits (提交审核); the demo
reviewer of its province (广东) approves (审核通过); the worker delivers the approval SMS, which
`flask --app app sms outbox` then shows as sent. Exits non-zero at the first step that fails.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import requests

PROJECT = Path(__file__).resolve().parents[1]
SCHOOL = ("zjxx_weekly", "demo2026pilot")  # 珠江信息职业学院 (广东), an upgraded weekly-report account
REVIEWER = ("gd_reviewer", "demo2026pilot")
NEW_PASSWORD = "Smoke2026pilot"
SMS_TIMEOUT = 90


class SmokeFailure(Exception):
    """A step of the flow did not do what a user would expect."""


@dataclass
class Form:
    """A <form> of a page: where it posts and the values a browser would send by default."""

    action: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, list[str]] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class FormParser(HTMLParser):
    """Collect the forms of a page with their inputs, selects, textareas and submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", "")))
            return
        if not self.forms:
            return
        form = self.forms[-1]
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                form.options.setdefault(name, []).append(a.get("value", "on"))
                if "checked" in a:
                    form.fields.setdefault(name, []).append(a.get("value", "on"))
            elif kind in ("submit", "button"):
                form.buttons.append((name, a.get("value", "")))
            else:
                form.fields[name] = [a.get("value", "")]
        elif tag == "select" and name:
            self._select = name
            form.options.setdefault(name, [])
        elif tag == "option" and self._select:
            value = a.get("value", "")
            form.options[self._select].append(value)
            if "selected" in a:
                form.fields.setdefault(self._select, []).append(value)
        elif tag == "textarea" and name:
            self._textarea = name
            form.fields[name] = [""]
        elif tag == "button" and name:
            form.buttons.append((name, a.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1].fields[self._textarea][0] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


class Browser:
    """A requests session that follows redirects and knows the page it is on."""

    def __init__(self, base: str, who: str) -> None:
        self.base = base.rstrip("/")
        self.who = who
        self.http = requests.Session()
        self.page: requests.Response | None = None

    def get(self, path: str) -> requests.Response:
        self.page = self._check(self._send("GET", urljoin(self.base + "/", path.lstrip("/"))))
        return self.page

    def form_with(self, field_name: str) -> Form:
        """Return the form of the current page that has the named field."""
        assert self.page is not None
        parser = FormParser()
        parser.feed(self.page.text)
        for form in parser.forms:
            if field_name in form.fields or field_name in form.options:
                return form
        raise SmokeFailure(f"{self.who}: no form with field {field_name!r} on {self.path}")

    def submit(self, form: Form, values: dict[str, str | list[str]], ok: tuple[int, ...] = (200,)) -> requests.Response:
        data: dict[str, list[str]] = {k: list(v) for k, v in form.fields.items()}
        for key, value in values.items():
            data[key] = list(value) if isinstance(value, list) else [value]
        if "csrf_token" not in data:
            raise SmokeFailure(f"{self.who}: the form on {self.path} has no csrf_token")
        assert self.page is not None
        url = urljoin(self.page.url, form.action) if form.action else self.page.url
        self.page = self._check(self._send("POST", url, data=data), ok)
        return self.page

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send a request and follow its redirects, sending the stack's cookies along.

        Production cookies are Secure (HTTPS ends at the proxy); the smoke talks plain HTTP to 127.0.0.1 as the proxy
        would, so each cookie received is kept sendable over HTTP before the next request.
        """
        response = self.http.request(method, url, allow_redirects=False, timeout=30, **kwargs)
        for _ in range(10):
            for cookie in self.http.cookies:
                cookie.secure = False
            if not response.is_redirect:
                break
            response = self.http.get(urljoin(response.url, response.headers["location"]), allow_redirects=False,
                                     timeout=30)
        return response

    @property
    def path(self) -> str:
        return urlparse(self.page.url).path if self.page is not None else "-"

    def _check(self, response: requests.Response, ok: tuple[int, ...] = (200,)) -> requests.Response:
        if response.status_code not in ok:
            text = re.sub(r"<[^>]+>", " ", response.text)
            raise SmokeFailure(f"{self.who}: {response.request.method} {response.url} -> {response.status_code}: "
                               f"{' '.join(text.split())[:600]}")
        return response


def step(message: str) -> None:
    print(f"[smoke] {message}", flush=True)


def login(browser: Browser, username: str, password: str) -> None:
    browser.get("/login")
    browser.submit(browser.form_with("username"), {"username": username, "password": password})
    if browser.path == "/login":
        raise SmokeFailure(f"login as {username} failed")
    if browser.path == "/password":  # an account with a system-issued password must change it first
        browser.submit(browser.form_with("confirm"), {"current": password, "password": NEW_PASSWORD,
                                                      "confirm": NEW_PASSWORD})
    step(f"logged in as {username} -> {browser.path}")


def declare(school: Browser) -> int:
    info = {"education_level": "高职专科", "ownership": "公办", "contact_name": "陈老师",
            "contact_phone": "13900001111", "address": "广州市天河区示范路 1 号"}
    school.get("/school/declarations/new")
    if school.path == "/school/info":
        school.submit(school.form_with("education_level"), dict(info))
        step("completed 完善院校基础信息")
        school.get("/school/declarations/new")
    form = school.form_with("certificate_id")
    # A school declaring again (flow 二) fills only the basic information still missing, on the declaration form.
    missing = {k: v for k, v in info.items() if k in form.options or (k in form.fields and not any(form.fields[k]))}
    if missing:
        step(f"the declaration form asks for the missing basic information too: {', '.join(sorted(missing))}")
    certificates = [v for v in form.options.get("certificate_id", []) if v]
    majors = [v for v in form.options.get("majors", []) if v]
    if not certificates or not majors:
        raise SmokeFailure(f"the declaration form offers no certificate or major: {form.options}")
    if ("action", "submit") not in form.buttons:
        raise SmokeFailure(f"the declaration form has no 提交审核 button: {form.buttons}")
    school.submit(form, {
        "certificate_id": certificates[0], "level": "中级", "majors": majors[:2], "trainee_count": "60",
        "teachers": "专任教师 8 人，其中 3 人持有相关职业技能等级证书，具备企业项目经验。",
        "facilities": "计算机实训室 3 间，每间 50 个工位，具备考核所需网络与软件环境。", "action": "submit", **missing,
    })
    found = re.fullmatch(r"/school/declarations/(\d+)", school.path)
    if not found:
        raise SmokeFailure(f"submitting did not lead to the declaration page but to {school.path}")
    if "待审核" not in school.page.text:  # type: ignore[union-attr]
        raise SmokeFailure("the submitted declaration does not show 待审核")
    return int(found.group(1))


def approve(reviewer: Browser, declaration_id: int) -> None:
    link = f"/review/declarations/{declaration_id}"
    reviewer.get("/review/")
    if link not in reviewer.page.text:  # type: ignore[union-attr]
        raise SmokeFailure(f"declaration {declaration_id} is not in the reviewer's queue")
    reviewer.get(link)
    reviewer.submit(reviewer.form_with("decision"), {"decision": "approve", "comment": "材料齐全，同意试点。"})
    if reviewer.path.rstrip("/") != "/review":
        raise SmokeFailure(f"approving did not return to the queue but to {reviewer.path}")


def outbox() -> str:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "sms", "outbox", "--limit", "50"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SmokeFailure(f"flask sms outbox failed: {done.stderr[-1000:]}")
    return done.stdout


def wait_for_approval_sms(certificate_hint: str) -> str:
    deadline = time.monotonic() + SMS_TIMEOUT
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = [line for line in outbox().splitlines() if "审核通过" in line]
        sent = [line for line in lines if "[sent]" in line and certificate_hint in line]
        if sent:
            return sent[0]
        time.sleep(2)
    raise SmokeFailure(f"no approval SMS was delivered within {SMS_TIMEOUT}s; outbox lines: {lines}")


def main(base: str) -> int:
    started = time.monotonic()
    try:
        school = Browser(base, "school")
        login(school, *SCHOOL)
        declaration_id = declare(school)
        step(f"declaration #{declaration_id} submitted (待审核)")
        reviewer = Browser(base, "reviewer")
        login(reviewer, *REVIEWER)
        approve(reviewer, declaration_id)
        step(f"declaration #{declaration_id} approved by {REVIEWER[0]}")
        school.get(f"/school/declarations/{declaration_id}")
        if "审核通过" not in school.page.text:  # type: ignore[union-attr]
            raise SmokeFailure("the school does not see 审核通过 on its declaration")
        step("the school sees 审核通过")
        line = wait_for_approval_sms("试点已审核通过")
        step(f"approval SMS delivered by the worker: {line}")
    except (SmokeFailure, requests.RequestException) as exc:
        print(f"[smoke] FAILED: {exc}", flush=True)
        return 1
    print(f"[smoke] OK: one declaration submitted, approved and notified in {time.monotonic() - started:.1f}s",
          flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
