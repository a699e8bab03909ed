"""Fixtures of the web page tests: Debian's Chromium (``/usr/bin/chromium``), driven by
Playwright, against a real node serving its pages on 127.0.0.1."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from carechain.api.web.logins import WebLogins, totp_code
from carechain.identity.wallet import Credentials
from carechain.node.node import Node
from support import Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a machine with no outside network (see the env notes): no background
# connections, no GPU, a fresh profile each launch.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a long demo password"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Person:
    """A login of a member, and a browser page of their own (own cookies)."""

    name: str
    secret: bytes
    page: Page
    url: str

    def log_in(self, path: str = "/web/", password: str = PASSWORD) -> None:
        self.page.goto(self.url + path)
        self.page.fill("#name", self.name)
        self.page.fill("#password", password)
        self.page.fill("#code", totp_code(self.secret, time.time()))
        self.page.click("#submit")


@pytest.fixture
def web(
    node: Node, api: Server, browser: Browser, member: Callable[[str], Credentials]
) -> Iterator[Callable[[str, str], Person]]:
    """``web(login_name, "org/member")``: a new login and a browser context of its own."""
    logins = WebLogins(node.config.data_dir)
    contexts = []

    def person(name: str, who: str) -> Person:
        added = logins.add(name, member(who), PASSWORD)
        context = browser.new_context(locale="zh-CN")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return Person(name, added.secret, context.new_page(), api.url)

    yield person
    for context in contexts:
        context.close()
