"""`mentionwatch report` on a generated history whose numbers are known, in table, csv and json."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import create_engine
from matplotlib.image import imread
from typer.testing import CliRunner

from alerts.reply_clock import ClockRow
from monitor.chart import sentiment_chart
from monitor.cli import app
from monitor.config import load_settings
from monitor.report import build_report, top_terms
from monitor.store import Store
from tests.support.config import config_dict, write_config
from tests.support.database import create_v1_database
from tests.support.histories import add, add_gap, labels

WEEK_A = datetime(2026, 10, 5, tzinfo=timezone.utc)  # a Monday
WEEK_B = WEEK_A + timedelta(days=7)
NOW = datetime(2026, 10, 20, tzinfo=timezone.utc)
COMPLAINTS = ["Acme Cloud login is broken again", "login broken on @acmecloud", "billing refund broken",
              "Acme billing page is broken", "why is the acme.io login so slow"]


@pytest.fixture
def history(database, tmp_path):
    """Week A: 10 mentions (reddit 6, x 4), negative 5 / neutral 2 / positive 3, complaints 5, questions 2,
    praise 3, net -0.2. Week B: 5 on feed, one unlabelled, 4 positive praise (one relabelled from
    negative), net +1.0. Globex has 2 mentions. A coverage gap on acme/reddit; two reply clocks."""
    config = config_dict(tmp_path, "http://127.0.0.1:9", [])
    config["brands"]["globex"] = {"names": ["Globex"], "slack_channel": "#globex"}
    path = write_config(tmp_path, config)
    settings, _ = load_settings(path)
    store = Store(settings.storage.url)
    day = WEEK_A + timedelta(days=1, hours=10)
    complaint_ids = [add(store, "acme", "reddit", day, "negative", "complaint", text, reach=10 * i)
                     for i, text in enumerate(COMPLAINTS[:4])]
    add(store, "acme", "reddit", day, "neutral", "question")
    add(store, "acme", "reddit", day, "positive", "praise")
    add(store, "acme", "x", day + timedelta(days=1), "negative", "complaint", COMPLAINTS[4])
    add(store, "acme", "x", day + timedelta(days=1), "neutral", "question")
    for _ in range(2):
        add(store, "acme", "x", day + timedelta(days=1), "positive", "praise")
    for _ in range(3):
        add(store, "acme", "feed", WEEK_B + timedelta(days=1), "positive", "praise", "Acme is great")
    relabelled = add(store, "acme", "feed", WEEK_B + timedelta(days=2), "negative", "complaint", "Acme broken",
                     model="old-model")
    store.save_labels([(relabelled, labels("positive", "praise", "new-model"))], WEEK_B + timedelta(days=3))
    add(store, "acme", "feed", WEEK_B + timedelta(days=3), None)
    for _ in range(2):
        add(store, "globex", "x", day, "negative", "complaint", "globex broken")
    add_gap(store, "acme", "reddit", WEEK_A, WEEK_A + timedelta(hours=6), 40, "rate limited for six hours")
    store.create_clocks([ClockRow(mid, "acme", "open", day, day + timedelta(hours=4), intent="complaint")
                         for mid in complaint_ids[:2]])
    store.record_response(complaint_ids[0], "sam", day + timedelta(minutes=30), None, "reddit", day)
    yield settings, store, path
    store.close()


def test_weekly_numbers_use_each_mentions_newest_label(database, history):
    settings, store, _ = history
    (report,) = build_report(store, settings, since=WEEK_A - timedelta(days=3), now=NOW, by="week", brand="acme")
    a, b = report.periods
    assert (a.period, a.volume, dict(a.by_source)) == ("2026-10-05", 10, {"reddit": 6, "x": 4})
    assert dict(a.sentiment) == {"negative": 5, "neutral": 2, "positive": 3}
    assert a.net == pytest.approx(-0.2) and a.share("negative") == pytest.approx(0.5)
    assert dict(a.intents) == {"complaint": 5, "question": 2, "praise": 3}
    assert (b.period, b.volume, b.labelled, dict(b.sentiment)) == ("2026-10-12", 5, 4, {"positive": 4})
    assert b.net == pytest.approx(1.0) and dict(b.intents) == {"praise": 4}
    assert report.terms[:3] == [("broken", 4), ("login", 3), ("billing", 2)]
    assert not {"acme", "cloud", "acmecloud", "is", "the"} & {term for term, _ in report.terms}
    assert [g["reason"] for g in report.gaps] == ["rate limited for six hours"]
    (stats,) = report.responses
    assert (stats.source, stats.needing_reply, stats.answered, stats.median) == ("reddit", 2, 1, timedelta(minutes=30))
    assert stats.within_promise == pytest.approx(0.5)


def test_daily_periods_and_the_window(database, history):
    settings, store, _ = history
    (report,) = build_report(store, settings, since=WEEK_B, now=NOW, by="day", brand="acme")
    assert [(p.period, p.volume) for p in report.periods] == [("2026-10-13", 3), ("2026-10-14", 1), ("2026-10-15", 1)]
    assert report.gaps == [] and report.terms == []  # week A's gap and complaints are outside the window


def test_terms_count_each_text_once_and_drop_stopwords_urls_and_brand_words():
    texts = ["Refund refund REFUND please https://acme.io/refund", "the refund is late #acme", "acme acme",
             "Acme Cloud's refund’s late"]
    assert top_terms(texts, {"acme", "cloud"}) == [("refund", 3), ("late", 2), ("please", 1)]


def _cli(path, *args):
    result = CliRunner().invoke(app, ["report", *args, "--config", str(path), "--since", "2026-10-01"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_format_for_scripts(history):
    _, _, path = history
    (acme,) = json.loads(_cli(path, "--brand", "acme", "--format", "json"))
    assert acme["volume"] == 15 and acme["volume_by_source"] == {"reddit": 6, "x": 4, "feed": 5}
    week_a = acme["periods"][0]
    assert week_a["sentiment"] == {"negative": 5, "neutral": 2, "positive": 3}
    assert week_a["net_sentiment"] == pytest.approx(-0.2)
    assert week_a["intents"]["complaint"] == 5
    assert acme["complaint_terms"][0] == {"term": "broken", "count": 4}
    assert acme["gaps"][0]["estimated_count"] == 40
    assert acme["responses"][0]["median"] == 1800.0


def test_csv_format_one_row_per_brand_and_period(history):
    _, _, path = history
    rows = list(csv.DictReader(io.StringIO(_cli(path, "--format", "csv", "--by", "week"))))
    by_key = {(r["brand"], r["period"]): r for r in rows}
    assert set(by_key) == {("acme", "2026-10-05"), ("acme", "2026-10-12"), ("globex", "2026-10-05")}
    week_a = by_key[("acme", "2026-10-05")]
    volumes = (week_a["volume"], week_a["volume_reddit"], week_a["volume_x"], week_a["volume_feed"])
    assert volumes == ("10", "6", "4", "0")
    assert (week_a["negative"], week_a["negative_share"], week_a["net_sentiment"]) == ("5", "0.5", "-0.2")
    assert by_key[("globex", "2026-10-05")]["complaint"] == "2"


def test_table_format_and_chart_file(history, tmp_path):
    _, _, path = history
    out = _cli(path, "--brand", "acme", "--chart", str(tmp_path / "acme.png"))
    for expected in ("2026-10-05", "-0.20", "+1.00", "5 (50%)", "broken", "rate limited for six hours",
                     "Response times", "reddit"):
        assert expected in out
    image = imread(tmp_path / "acme.png")
    assert image.shape[:2] == (650, 1000)


def test_unknown_brand_is_named(history):
    _, _, path = history
    result = CliRunner().invoke(app, ["report", "--config", str(path), "--brand", "nope"])
    assert result.exit_code != 0 and "nope" in result.output and "acme" in result.output


def test_report_responses_subcommand(history):
    _, _, path = history
    result = CliRunner().invoke(app, ["report", "responses", "--config", str(path), "--brand", "acme",
                                      "--since", "2026-10-01"])
    assert result.exit_code == 0, result.output
    assert "Response times" in result.output and "reddit" in result.output and "30 min" in result.output


def test_chart_is_a_readable_image(database, history):
    settings, store, _ = history
    (report,) = build_report(store, settings, since=WEEK_A - timedelta(days=14), now=NOW, by="week", brand="acme")
    image = imread(io.BytesIO(sentiment_chart(report)), format="png")
    assert image.shape[:2] == (650, 1000)
    colours = np.unique((image[:, :, :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # bars, lines, text and legend, not a blank canvas
    red = np.all(np.abs(image[:, :, :3] - np.array([0xd6, 0x27, 0x28]) / 255) < 0.02, axis=2)
    assert red.sum() > 500  # the negative bars are drawn


def test_upgrading_a_version_1_database_adds_the_report_indexes(database):
    create_v1_database(database)
    Store(database).close()
    engine = create_engine(database)
    with engine.connect() as conn:
        names = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'" if engine.dialect.name
                                         == "sqlite" else "SELECT indexname FROM pg_indexes").scalars())
        if engine.dialect.name == "sqlite":  # the report's covering index is SQLite's (schema.py)
            plan = " ".join(str(r) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT brand, strftime('%Y-%m-%d', coalesce(created_at, fetched_at)) AS day, "
                "source, count(*) FROM mentions WHERE brand = 'acme' GROUP BY 1, 2, 3"))
            assert "ix_mentions_report" in names
            assert "COVERING INDEX ix_mentions_report" in plan and "TEMP B-TREE" not in plan
    engine.dispose()
    assert {"ix_labels_newest", "ix_mentions_thread"} <= names
