"""The page's login: session cookie, CSRF defence, rate limits, logout, and sessions that end."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from auth_helpers import ADMIN, VIEWER, Accounts, bearer, login
from server_helpers import metric_samples
from support import wait_until

from scraper.state import FleetState


@pytest.fixture
def server(state: FleetState, serve: Callable[..., str], accounts: Accounts) -> str:
    return serve(
        state,
        store=accounts.store,
        anonymous_read=False,
        login_rate_per_address="6/minute",
        login_rate_per_user="3/minute",
    )


def refused_logins(base: str, token: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", headers=bearer(token)).text
    return {
        dict(labels)["reason"]: value
        for (name, labels), value in metric_samples(text).items()
        if name == "millwatch_logins_refused_total"
    }


def test_login_sets_a_strict_httponly_cookie_and_me_answers_who(server: str) -> None:
    answer = httpx.post(f"{server}/api/auth/login", json={"name": VIEWER[0], "password": VIEWER[1]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["name"] == "vic" and body["role"] == "viewer" and body["kind"] == "session"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("millwatch_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attributes  # plain http on loopback: a Secure cookie would never come back
    session = answer.cookies["millwatch_session"]
    assert session not in answer.text
    me = httpx.get(f"{server}/api/auth/me", cookies={"millwatch_session": session})
    assert me.json() == {"name": "vic", "role": "viewer", "kind": "session", "csrf_token": body["csrf_token"]}


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(server: str, accounts: Accounts) -> None:
    wrong = httpx.post(f"{server}/api/auth/login", json={"name": "vic", "password": "not-it-at-all"})
    unknown = httpx.post(f"{server}/api/auth/login", json={"name": "nobody", "password": "not-it-at-all"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "wrong name or password"})
    assert (unknown.status_code, unknown.json()) == (401, {"detail": "wrong name or password"})
    assert "set-cookie" not in wrong.headers
    assert refused_logins(server, accounts.viewer_token)["bad_credentials"] == 2


def test_unsafe_requests_with_the_cookie_need_the_csrf_token(server: str) -> None:
    with login(server, *ADMIN) as admin:
        token = admin.headers.pop("X-CSRF-Token")
        body = {"name": "ci", "role": "viewer"}
        missing = admin.post("/api/admin/tokens", json=body)
        assert (missing.status_code, missing.json()) == (
            403,
            {"detail": "missing or wrong X-CSRF-Token header"},
        )
        wrong = admin.post("/api/admin/tokens", json=body, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        assert "ci" not in {t["name"] for t in admin.get("/api/admin/tokens").json()["tokens"]}
        made = admin.post("/api/admin/tokens", json=body, headers={"X-CSRF-Token": token})
        assert made.status_code == 201 and made.json()["token"].startswith("mwt_")
        # Another session's token is no good either.
        with login(server, *ADMIN) as other:
            crossed = admin.delete(
                "/api/admin/tokens/ci", headers={"X-CSRF-Token": other.headers["X-CSRF-Token"]}
            )
            assert crossed.status_code == 403


def test_a_bearer_token_needs_no_csrf_token(server: str, accounts: Accounts) -> None:
    made = httpx.post(
        f"{server}/api/admin/tokens",
        json={"name": "ci", "role": "viewer"},
        headers=bearer(accounts.admin_token),
    )
    assert made.status_code == 201


def test_logout_ends_the_session_on_the_server(server: str) -> None:
    with login(server, *VIEWER) as viewer:
        session = viewer.cookies["millwatch_session"]
        assert viewer.get("/api/machines").status_code == 200
        without_csrf = httpx.post(f"{server}/api/auth/logout", cookies={"millwatch_session": session})
        assert without_csrf.status_code == 403
        out = viewer.post("/api/auth/logout")
        assert out.status_code == 204
        assert 'millwatch_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    # The old cookie, replayed, is worth nothing.
    assert httpx.get(f"{server}/api/machines", cookies={"millwatch_session": session}).status_code == 401


def test_a_password_change_or_removal_ends_that_users_sessions(server: str, accounts: Accounts) -> None:
    with login(server, *VIEWER) as viewer, login(server, *ADMIN) as admin:
        changed = admin.put("/api/admin/users/vic/password", json={"password": "a-new-password"})
        assert changed.status_code == 204
        assert viewer.get("/api/machines").status_code == 401
        assert admin.get("/api/machines").status_code == 200
    with login(server, "vic", "a-new-password") as viewer, login(server, *ADMIN) as admin:
        assert admin.delete("/api/admin/users/vic").status_code == 204
        assert viewer.get("/api/machines").status_code == 401
        assert admin.delete("/api/admin/users/ada").status_code == 422  # the last admin stays
        assert [u["name"] for u in admin.get("/api/admin/users").json()["users"]] == ["ada"]


def test_an_expired_session_is_refused(
    state: FleetState, serve: Callable[..., str], accounts: Accounts
) -> None:
    base = serve(state, store=accounts.store, anonymous_read=False, session_lifetime="1s")
    with login(base, *VIEWER) as viewer:
        wait_until(
            lambda: viewer.get("/api/machines").status_code == 401, timeout=20, what="the session to expire"
        )


def test_failed_logins_are_limited_per_user_then_per_address(server: str, accounts: Accounts) -> None:
    def attempt(name: str, password: str = "wrong-password") -> httpx.Response:
        return httpx.post(f"{server}/api/auth/login", json={"name": name, "password": password}, timeout=30)

    assert [attempt("vic").status_code for _ in range(3)] == [401, 401, 401]
    limited = attempt("vic", VIEWER[1])  # even the right password waits now
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another name from the same address still gets its tries, until the address is used up.
    assert [attempt("ada").status_code for _ in range(3)] == [401, 401, 401]
    by_address = attempt("someone-else")
    assert by_address.status_code == 429
    refused = refused_logins(server, accounts.viewer_token)
    assert refused == {"bad_credentials": 6, "rate_limited_user": 1, "rate_limited_address": 1}


def test_parallel_guesses_get_no_more_password_checks_than_the_limit(server: str, accounts: Accounts) -> None:
    # A password check takes tens of milliseconds: guesses sent all at once must not all slip into
    # the window before the first failure is counted.
    def attempt(_: int) -> int:
        body = {"name": "vic", "password": "wrong-password"}
        return httpx.post(f"{server}/api/auth/login", json=body, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(attempt, range(20)))
    assert sorted(codes) == [401] * 3 + [429] * 17
    refused = refused_logins(server, accounts.viewer_token)
    assert refused == {"bad_credentials": 3, "rate_limited_user": 17, "rate_limited_address": 0}


def test_a_login_must_be_json(server: str) -> None:
    # A form on another site can post text/plain without asking; the login route does not read it.
    answer = httpx.post(
        f"{server}/api/auth/login",
        content=b'{"name": "vic", "password": "vic-password-1"}',
        headers={"Content-Type": "text/plain"},
    )
    assert answer.status_code == 422 and "set-cookie" not in answer.headers


def test_overlong_credentials_are_refused_without_work(server: str) -> None:
    long_password = httpx.post(f"{server}/api/auth/login", json={"name": "vic", "password": "x" * 5000})
    assert long_password.status_code == 422
    long_token = httpx.get(f"{server}/api/machines", headers=bearer("mwt_" + "x" * 5000))
    assert long_token.status_code == 401
