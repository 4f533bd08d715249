from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from transforms.config.settings import Settings
from transforms.core.periods import utcnow
from transforms.ingest.audit import LoadRecord
from transforms.ops.alerts import send_alert
from transforms.quality.metrics import COMPLETENESS
from transforms.tasks import DataQualityFailure, report_quality
from transforms.warehouse.ddl import apply_ddl
from transforms.warehouse.engine import make_engine
from transforms.warehouse.tables import quality_warnings


def test_alert_is_posted_to_the_webhook_as_json(webhook):
    url, received = webhook
    assert send_alert(url, "title", ["line one", "line two"]) is True
    assert received == [{"title": "title", "text": "line one\nline two"}]


def test_unreachable_webhook_is_logged_not_raised():
    assert send_alert("http://127.0.0.1:9/nowhere", "title", ["x"]) is False


COMPLETENESS_WARNING = (
    "ae_attendances 2025-01: ethnicity recorded for less than the 90% threshold "
    "(85.0% known overall)"
)
RECORDS = [
    [
        LoadRecord(
            load_id="1",
            source="ae_attendances",
            file_name="ae_attendances_2025-01.csv",
            period="2025-01",
            sha256="0" * 64,
            status="loaded",
            warnings=(COMPLETENESS_WARNING,),
        ).to_xcom()
    ]
]


def test_completeness_warnings_alert_and_the_run_carries_on(webhook, tmp_path):
    url, received = webhook
    settings = Settings(var_dir=tmp_path, alert_webhook_url=url)
    assert report_quality(settings, "ae_attendances", RECORDS) == [COMPLETENESS_WARNING]
    assert "less than the 90% threshold" in received[0]["text"]


def warned(tmp_path, kind: str, message: str, **options) -> Settings:
    """Settings of a warehouse where load 1 raised ``message`` from the check ``kind``."""
    settings = Settings(var_dir=tmp_path, warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}")
    engine = make_engine(settings.warehouse_url)
    apply_ddl(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(quality_warnings).values(
                load_id="1",
                source="ae_attendances",
                period="2025-01",
                kind=kind,
                message=message,
                raised_at=utcnow(),
            )
        )
    return settings.model_copy(update=options)


def test_completeness_warnings_fail_the_run_when_configured(tmp_path):
    settings = warned(tmp_path, COMPLETENESS, COMPLETENESS_WARNING, completeness_action="fail")
    with pytest.raises(DataQualityFailure, match="1 completeness warning"):
        report_quality(settings, "ae_attendances", RECORDS)


def test_other_data_quality_warnings_alert_but_never_fail_the_run(webhook, tmp_path):
    url, received = webhook
    shift = "ae_attendances 2025-01: WARN unless each code's share ... (department_type = 01)"
    settings = warned(
        tmp_path, "code_shares", shift, alert_webhook_url=url, completeness_action="fail"
    )
    records = [[LoadRecord.from_xcom(RECORDS[0][0] | {"warnings": [shift]}).to_xcom()]]
    assert report_quality(settings, "ae_attendances", records) == [shift]
    assert "1 data-quality warning(s)" in received[0]["title"]


def test_a_webhook_url_without_a_scheme_is_logged_not_raised_and_never_quoted(caplog):
    """urllib refuses it with an error quoting the whole URL, token and all."""
    assert send_alert("hooks.example.com/services/T0/B0/secret-token", "t", ["x"]) is False
    assert "secret-token" not in caplog.text
    assert "could not deliver alert to the webhook at <not a URL; not shown>" in caplog.text


def test_a_failed_task_alert_quotes_no_warehouse_password(webhook, tmp_path, monkeypatch, caplog):
    from dags.common.factory import alert_on_failure

    url, received = webhook
    warehouse = "postgresql+psycopg://hei:hunter2-password@db/warehouse"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEI_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("HEI_WAREHOUSE_URL", warehouse)
    alert_on_failure(
        {
            "ti": SimpleNamespace(dag_id="ingest_deaths", task_id="load_month"),
            "run_id": "manual__1",
            "exception": RuntimeError(f"could not reach {warehouse}"),
        }
    )
    assert "could not reach postgresql+psycopg://hei:***@db/warehouse" in received[0]["text"]
    assert "hunter2" not in received[0]["text"] and "hunter2" not in caplog.text
