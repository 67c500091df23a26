"""The reply clock's decisions as tables: business-hours deadlines, reminder times, what is due when."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.grouping import in_hours
from alerts.reply_clock import (
    ClockPolicy,
    ClockRow,
    Due,
    business_add,
    deadline,
    due_event,
    promise_for,
    reminder_time,
)
from monitor.config import Brand, WeeklyHours

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
OFFICE_BERLIN = WeeklyHours(timezone="Europe/Berlin", days=WEEKDAYS, start=time(9), end=time(17))
OFFICE_NY = WeeklyHours(timezone="America/New_York", days=WEEKDAYS, start=time(9), end=time(17))
EVERY_DAY_BERLIN = WeeklyHours(timezone="Europe/Berlin", start=time(9), end=time(17))
NIGHTS = WeeklyHours(timezone="UTC", start=time(22), end=time(6))
EARLY_BERLIN = WeeklyHours(timezone="Europe/Berlin", start=time(0), end=time(6))


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize("start, promise, hours, expected", [
    # no business hours: wall-clock time
    (datetime(2026, 11, 20, 16, tzinfo=UTC), timedelta(hours=4), None, datetime(2026, 11, 20, 20, tzinfo=UTC)),
    # Fri 16:00 Berlin + 4 business hours (Mon-Fri 9-17): 1 h on Friday, 3 h on Monday
    (berlin(2026, 11, 20, 16), timedelta(hours=4), OFFICE_BERLIN, berlin(2026, 11, 23, 12)),
    # inside one day
    (berlin(2026, 11, 18, 10), timedelta(hours=4), OFFICE_BERLIN, berlin(2026, 11, 18, 14)),
    # posted on Saturday: the clock starts Monday 9:00
    (berlin(2026, 11, 21, 11), timedelta(hours=2), OFFICE_BERLIN, berlin(2026, 11, 23, 11)),
    # before opening, and after closing
    (berlin(2026, 11, 17, 7), timedelta(hours=1), OFFICE_BERLIN, berlin(2026, 11, 17, 10)),
    (berlin(2026, 11, 17, 18), timedelta(hours=1), OFFICE_BERLIN, berlin(2026, 11, 18, 10)),
    # exactly at closing time: nothing left today
    (berlin(2026, 11, 17, 17), timedelta(minutes=30), OFFICE_BERLIN, berlin(2026, 11, 18, 9, 30)),
    # two business days span a weekend
    (berlin(2026, 11, 20, 9), timedelta(hours=16), OFFICE_BERLIN, berlin(2026, 11, 23, 17)),
    # another time zone: Fri 15:00 New York + 4 h = 2 h Friday + 2 h Monday
    (datetime(2026, 11, 20, 15, tzinfo=NEW_YORK), timedelta(hours=4), OFFICE_NY,
     datetime(2026, 11, 23, 11, tzinfo=NEW_YORK)),
    # overnight windows: 22:00-06:00; from inside one, and from the morning part of one
    (datetime(2026, 11, 18, 23, tzinfo=UTC), timedelta(hours=4), NIGHTS, datetime(2026, 11, 19, 3, tzinfo=UTC)),
    (datetime(2026, 11, 18, 5, tzinfo=UTC), timedelta(hours=4), NIGHTS, datetime(2026, 11, 19, 1, tzinfo=UTC)),
    # DST ends Sun 2026-10-25 in Berlin: Sat 16:00 CEST + 4 h (every day 9-17) -> Sun 12:00 CET
    (berlin(2026, 10, 24, 16), timedelta(hours=4), EVERY_DAY_BERLIN, berlin(2026, 10, 25, 12)),
    # ... and the night of the change has 7 real hours between 00:00 and 06:00: 6 h end at 05:00 CET
    (berlin(2026, 10, 25, 0), timedelta(hours=6), EARLY_BERLIN, berlin(2026, 10, 25, 5)),
    # DST starts Sun 2026-03-29: that night's 00:00-06:00 has 5 real hours, so 6 h run into Monday
    (berlin(2026, 3, 29, 0), timedelta(hours=6), EARLY_BERLIN, berlin(2026, 3, 30, 1)),
])
def test_deadline_in_business_hours(start, promise, hours, expected):
    assert deadline(start.astimezone(UTC), promise, hours) == expected.astimezone(UTC)


def test_a_window_without_days_is_refused():
    with pytest.raises(ValueError):
        business_add(datetime(2026, 11, 20, tzinfo=UTC), timedelta(hours=1),
                     WeeklyHours(days=[], start=time(9), end=time(17)))


@pytest.mark.parametrize("intent, expected", [
    ("question", timedelta(hours=1)), ("complaint", timedelta(hours=4)), ("praise", timedelta(days=1)),
    (None, timedelta(hours=4)),
])
def test_promise_per_intent(intent, expected):
    brand = Brand(names=["Acme"], slack_channel="#acme", reply_within="4h",
                  reply_within_by_intent={"question": "1h", "praise": "1d"})
    assert promise_for(brand, intent) == expected


@pytest.mark.parametrize("start, share, hours, expected", [
    (datetime(2026, 11, 20, 12, tzinfo=UTC), 0.75, None, datetime(2026, 11, 20, 15, tzinfo=UTC)),
    (datetime(2026, 11, 20, 12, tzinfo=UTC), 0.5, None, datetime(2026, 11, 20, 14, tzinfo=UTC)),
    # 75 % of 4 business hours from Fri 16:00 Berlin: 1 h Friday + 2 h Monday
    (berlin(2026, 11, 20, 16).astimezone(UTC), 0.75, OFFICE_BERLIN, berlin(2026, 11, 23, 11).astimezone(UTC)),
])
def test_reminder_at_a_share_of_the_promise(start, share, hours, expected):
    assert reminder_time(start, timedelta(hours=4), share, hours) == expected


T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)
H = timedelta(hours=1)
POLICY = ClockPolicy(repeat_interval=H)
OPEN = ClockRow(mention_id=1, brand="acme", state="open", started_at=T0, deadline=T0 + 4 * H, remind_at=T0 + 3 * H)
REMINDED = ClockRow(**{**OPEN.__dict__, "reminders_sent": 1, "last_reminder_at": T0 + 3 * H})
ESCALATED = ClockRow(**{**REMINDED.__dict__, "escalated_at": T0 + 4 * H})


def clock(base: ClockRow, **changes) -> ClockRow:
    return ClockRow(**{**base.__dict__, **changes})


@pytest.mark.parametrize("row, now, expected", [
    (OPEN, T0 + H, None),
    (OPEN, T0 + 3 * H, Due("reminder", 1)),                                    # 75 % of the promise
    (REMINDED, T0 + 3.5 * H, None),                                            # one reminder before the deadline
    (REMINDED, T0 + 4 * H, Due("escalation")),                                 # the deadline
    (OPEN, T0 + 9 * H, Due("escalation")),                                     # down past the deadline: escalate, no reminder burst
    (ESCALATED, T0 + 4.5 * H, None),
    (ESCALATED, T0 + 5 * H, Due("reminder", 2)),                               # every repeat_interval after it
    (clock(ESCALATED, reminders_sent=2, last_reminder_at=T0 + 5 * H), T0 + 5.5 * H, None),
    (clock(ESCALATED, reminders_sent=2, last_reminder_at=T0 + 5 * H), T0 + 6 * H, Due("reminder", 3)),
    (ESCALATED, T0 + 11 * H, Due("reminder", 2)),                              # six missed repeats: one
    (clock(OPEN, remind_at=None), T0 + 3.5 * H, None),                         # alerted after the reminder time
    (clock(OPEN, remind_at=None), T0 + 4 * H, Due("escalation")),
    # snooze pauses everything...
    (clock(REMINDED, state="snoozed", snoozed_until=T0 + 5 * H), T0 + 4.5 * H, None),
    (clock(ESCALATED, state="snoozed", snoozed_until=T0 + 7 * H), T0 + 6 * H, None),
    # ... then resumes: the escalation if the deadline passed meanwhile, else one reminder
    (clock(REMINDED, state="snoozed", snoozed_until=T0 + 5 * H), T0 + 5 * H, Due("escalation", after_snooze=True)),
    (clock(REMINDED, state="snoozed", snoozed_until=T0 + 3.5 * H), T0 + 3.5 * H, Due("reminder", 2, True)),
    (clock(ESCALATED, state="snoozed", snoozed_until=T0 + 7 * H), T0 + 7 * H, Due("reminder", 2, True)),
    # a snooze that ends before the reminder time just lets the clock run on
    (clock(OPEN, state="snoozed", snoozed_until=T0 + 2 * H), T0 + 2 * H, Due("resume")),
    # closed clocks are quiet forever
    (clock(OPEN, state="handled"), T0 + 20 * H, None),
    (clock(OPEN, state="not_relevant"), T0 + 20 * H, None),
])
def test_what_is_due(row, now, expected):
    assert due_event(row, POLICY, now) == expected


def test_bad_reply_policy_is_reported_with_file_line_key_and_value(database, tmp_path):
    from monitor.config import ConfigError, load_settings

    path = tmp_path / "config.yaml"
    path.write_text(
        "slack:\n  token: xoxb-test\n"
        "brands:\n  acme:\n    names: [Acme]\n    slack_channel: '#acme'\n"
        "    reply_within: 10s\n"
        "    reply_within_by_intent: {rant: 1h}\n"
        "    remind_at: 1.5\n"
        "    business_hours: {timezone: Mars/Olympus, start: '09:00', end: '17:00'}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, check_environment=False)
    problems = {p.path: p for p in err.value.problems}
    assert problems["brands.acme.reply_within"].line == 7 and "at least 1m" in problems["brands.acme.reply_within"].expected
    assert "'10s'" in problems["brands.acme.reply_within"].value
    assert problems["brands.acme.reply_within_by_intent.rant"].line == 8
    assert problems["brands.acme.remind_at"].line == 9
    assert "IANA time zone" in problems["brands.acme.business_hours.timezone"].expected


def test_unquoted_yaml_times_mean_what_they_say(database, tmp_path):
    from monitor.config import load_settings

    path = tmp_path / "config.yaml"
    path.write_text("slack:\n  token: xoxb-test\nbrands:\n  acme:\n    names: [Acme]\n    slack_channel: '#acme'\n"
                    "    business_hours: {start: 9:30, end: 17:00}\n")
    settings, _ = load_settings(path, check_environment=False)
    assert (settings.brands["acme"].business_hours.start, settings.brands["acme"].business_hours.end) == \
        (time(9, 30), time(17))


NIGHT_QUIET = ClockPolicy(repeat_interval=H, quiet_hours=WeeklyHours(start=time(22), end=time(7)))
LATE = datetime(2026, 11, 20, 21, tzinfo=UTC)  # 22:00 is 1 h after the reminder time
LATE_CLOCK = ClockRow(mention_id=2, brand="acme", state="open", started_at=LATE - 3 * H, deadline=LATE + 1.5 * H,
                      remind_at=LATE)


@pytest.mark.parametrize("row, now, expected", [
    (LATE_CLOCK, LATE, Due("reminder", 1)),                                    # before quiet hours
    (clock(LATE_CLOCK, remind_at=LATE + 1.2 * H), LATE + 1.2 * H, None),       # in quiet hours: held
    (LATE_CLOCK, LATE + 1.5 * H, Due("escalation")),                           # the promise is not held
    (clock(LATE_CLOCK, escalated_at=LATE + 1.5 * H), LATE + 5 * H, None),      # repeats wait for 07:00
    (clock(LATE_CLOCK, escalated_at=LATE + 1.5 * H), LATE + 10 * H, Due("reminder", 1)),
])
def test_reminders_wait_for_the_end_of_quiet_hours(row, now, expected):
    assert due_event(row, NIGHT_QUIET, now) == expected


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, 60 * 24 * 35), promise=st.integers(1, 12 * 60),
       hours=st.sampled_from([OFFICE_BERLIN, OFFICE_NY, NIGHTS, EARLY_BERLIN]))
def test_the_deadline_leaves_exactly_the_promise_in_business_hours(offset, promise, hours):
    """Checked minute by minute against `in_hours` (the quiet-hours test): an independent oracle."""
    start = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=offset)  # DST starts 8 March (US), 29 March (EU)
    end = deadline(start, timedelta(minutes=promise), hours)
    minutes = int((end - start).total_seconds() // 60)
    counted = sum(in_hours(hours, start + timedelta(minutes=m)) for m in range(minutes))
    assert counted == promise
    assert in_hours(hours, end - timedelta(minutes=1))  # no idle time tacked on at the end
