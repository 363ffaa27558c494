"""流程分析员手册: it lists what the running app lets a diagram use, and only analysts open it."""
from __future__ import annotations

import html

from sqlalchemy import select

from app.accounts import roles
from app.accounts.models import User
from app.engine import expressions
from app.engine.vocabulary import MEANINGS
from app.extensions import db
from app.handlers.registry import HANDLERS
from app.processes.manual import FUNCTION_HELP
from app.processes.publish_gate import PROCESS_DATA
from app.sms.models import SmsTemplate
from tests.factories import login, with_demo


def _page(app, username: str = "analyst"):
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client.get("/processes/manual")


def test_every_expression_function_is_explained():
    assert set(expressions.FUNCTIONS) == set(FUNCTION_HELP)


def test_the_manual_lists_what_the_app_allows(app):
    with_demo(app)
    with app.app_context():
        session = db.session()
        analyst = session.scalars(select(User).where(User.username == "analyst")).one()
        roles.create_role(session, analyst, "expert_reviewer", "专家评审员", "province")
        session.commit()
    response = _page(app)
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert "流程分析员手册" in page
    roles_part = page[page.find('id="roles"'):page.find('id="statuses"')]
    assert "<code>expert_reviewer</code></td><td>专家评审员" in roles_part, roles_part  # added roles show at once
    for meaning, (label, _) in MEANINGS.items():
        assert f"<code>{meaning}</code></td><td>{label}" in page
    for name, handler in HANDLERS.items():
        assert f"<code>{name}</code>" in page and handler.description in page
    with app.app_context():
        names = db.session.scalars(select(SmsTemplate.name)).all()
    assert "review_rejected" in names
    for name in names:
        assert f"<code>{name}</code>" in page
    for fields in PROCESS_DATA.values():
        for variable in fields:
            assert f"<code>{variable}</code>" in page
    assert "示例：为某省在省级审核后增加“专家评审”" in page


def test_only_analysts_open_the_manual(app):
    with_demo(app)
    for username in ("gd_reviewer", "gd_admin"):
        assert _page(app, username).status_code == 403
    assert app.test_client().get("/processes/manual").status_code == 302  # to the login page
