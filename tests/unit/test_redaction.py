from transforms.core.redaction import (
    display_location,
    display_url,
    display_webhook,
    scrub,
    url_secrets,
)

URL = "postgresql+psycopg://hei:p%40ss-word@db.example:5432/warehouse?password=q-secret&sslmode=require"


def test_a_url_is_shown_without_its_password_in_the_user_part_or_the_query():
    shown = display_url(URL)
    assert shown == (
        "postgresql+psycopg://hei:***@db.example:5432/warehouse?password=***&sslmode=require"
    )
    assert "ss-word" not in shown and "q-secret" not in shown


def test_a_url_without_secrets_is_shown_as_it_is():
    assert display_url("duckdb:///var/warehouse.duckdb") == "duckdb:///var/warehouse.duckdb"


def test_a_url_that_cannot_be_parsed_is_not_shown():
    assert "secret" not in display_url("not a url secret")


def test_a_webhook_is_shown_as_its_scheme_and_host_only():
    assert display_webhook("https://u:pw@hooks.slack.com/services/T0/B0/tok?x=1") == (
        "https://hooks.slack.com"
    )
    assert display_webhook(None) == "(none)"
    assert "tok" not in display_webhook("hooks/tok")


def test_scrub_takes_out_a_secret_however_the_url_writes_it():
    text = f"could not connect to {URL} (password p@ss-word)"
    cleaned = scrub(text, url_secrets(URL))
    assert "ss-word" not in cleaned and "q-secret" not in cleaned
    assert "db.example" in cleaned


def test_a_publish_target_is_shown_as_a_folder_or_as_a_url_without_its_credential():
    assert display_location("var/publish") == "var/publish"
    shown = display_location("abfs://releases/hwp?sas_token=sv-not-real&comp=list")
    assert "sv-not-real" not in shown
    assert shown.startswith("abfs://releases/hwp?")
    assert "not-a-real-secret" not in display_location("s3://AKIA:not-a-real-secret@releases/x")
