"""Logging a browser in and out: a server-side session per login (see ``auth``)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from batchline.repository.tokens import READ
from batchline.web.auth import (
    COOKIE,
    LOGIN_COOKIE,
    Guard,
    is_https,
    new_login_nonce,
)


def router(guard: Guard) -> APIRouter:
    from batchline.web.pages import templates

    routes = APIRouter(include_in_schema=False)

    def form(request: Request, *, failed: bool, status: int = 200) -> Response:
        nonce = new_login_nonce()
        response = templates.TemplateResponse(
            request, "login.html", {"failed": failed, "login_token": nonce}, status_code=status
        )
        # Double submit: a cross-site form cannot read this cookie, and with SameSite=Strict
        # the browser does not send it with a cross-site POST.
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            httponly=True,
            samesite="strict",
            path="/login",
            secure=is_https(request),
        )
        return response

    @routes.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return form(request, failed=False)

    @routes.post("/login")
    def login(
        request: Request,
        token: Annotated[str, Form(max_length=200)],
        login_token: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(expected, login_token):
            return form(request, failed=True, status=403)
        found = guard.tokens.find(token.strip())
        if found is None:
            return form(request, failed=True, status=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            guard.sessions.open(found),
            httponly=True,
            samesite="strict",
            path="/",
            secure=is_https(request),
        )
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @routes.post("/logout")
    def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
        caller = guard.require(request, READ)
        if caller.from_cookie:
            guard.sessions.close(caller.secret)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return routes
