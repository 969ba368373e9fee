from __future__ import annotations

import pytest

from tests.unit.audit.helpers import KEY, KEY_ENV


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY
