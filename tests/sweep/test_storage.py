import pytest
from sqlalchemy.exc import IntegrityError

from dlx.errors import DlxError


def _racing_rdb_storage(monkeypatch, failures: int) -> list[str]:
    """RDBStorage as when another worker creates the same tables: a duplicate key ``failures`` times."""
    import optuna

    from dlx.sweep import storage

    attempts = []

    def rdb_storage(url, **kwargs):
        attempts.append(url)
        if len(attempts) <= failures:
            raise IntegrityError("INSERT", {}, Exception('duplicate key value violates "pg_type_typname"'))
        return "storage"

    monkeypatch.setattr(optuna.storages, "RDBStorage", rdb_storage)
    monkeypatch.setattr(storage.time, "sleep", lambda seconds: None)
    return attempts


def test_a_worker_that_meets_another_creating_the_tables_tries_again(monkeypatch):
    from dlx.sweep.storage import open_storage

    attempts = _racing_rdb_storage(monkeypatch, failures=2)
    assert open_storage("sqlite:///sweeps.db") == "storage"
    assert len(attempts) == 3


def test_a_duplicate_key_that_persists_is_a_storage_error(monkeypatch):
    from dlx.sweep.storage import SCHEMA_ATTEMPTS, open_storage

    attempts = _racing_rdb_storage(monkeypatch, failures=100)
    with pytest.raises(DlxError, match="Cannot reach the sweep storage sqlite:///sweeps.db: duplicate key"):
        open_storage("sqlite:///sweeps.db")
    assert len(attempts) == SCHEMA_ATTEMPTS
