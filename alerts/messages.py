"""Block Kit messages for alerts. Every string a stranger wrote is escaped here and nowhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from connectors.registry import display_names, platforms
from monitor.core.labels import Labels
from monitor.core.logs import redact
from monitor.core.messages import Message, MessageEntry

EXCERPT_CHARS = 600
FALLBACK_CHARS = 300
SECTION_LIMIT = 3000     # Slack's limit on a section's (and a context element's) text
TEXT_LIMIT = 3000        # the message's fallback `text`: Slack takes more, notifications show far less
HEADER_LIMIT = 150
LABEL_CHARS = 200
URL_LIMIT = 2000         # a longer URL is shown as its label only, so a link always fits its section

# Shown invisibly or reordering what follows: bidi embeddings, overrides and isolates, marks, and
# zero-width characters (not the joiner, which emoji sequences need). Removed from strangers' text.
_INVISIBLE = re.compile("[\u061c\u180e\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def slack_date(moment: datetime, with_date: bool = True) -> str:
    """A time each reader sees in their own time zone (Slack's `<!date>`), with a UTC fallback for
    clients that cannot: our own markup, never built from a stranger's text."""
    utc = moment.astimezone(timezone.utc)
    token, fallback = ("{date_short_pretty} {time}", f"{utc:%Y-%m-%d %H:%M} UTC") if with_date else (
        "{time}", f"{utc:%H:%M} UTC")
    return f"<!date^{int(utc.timestamp())}^{token}|{fallback}>"


def neutralise(text: str) -> str:
    """Bidi controls, zero-width and control characters removed: what is shown is what is there."""
    return _CONTROL.sub("", _INVISIBLE.sub("", text))


def slack_escape(text: str) -> str:
    """Slack decodes only these three; `&` first, or `&lt;` would become `&amp;lt;`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Slack has no escape for its styling marks, and invisible characters around them can even force
# styling, so a stranger's marks are swapped for look-alikes that style nothing, in link labels too:
# `*bold*` stays readable as `∗bold∗` but is not bold. A `*` or `_` between two letters or digits can
# neither open nor close a style in Slack, so `some_user_name` is left as written (and copyable).
# A `:name:` that Slack would draw as an emoji gets a ratio sign (∶) for its first colon.
_LOOK_ALIKES = str.maketrans({"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb",
                              "\uff0a": "\ufe61", "\uff3f": "\u2e0f", "\uff40": "\u02cb"})  # and full-width
_LOOSE_MARK = re.compile(r"[~`\uff40]|(?<![^\W_])[*_\uff0a\uff3f]|[*_\uff0a\uff3f](?![^\W_])")
_SHORTCODE = re.compile(r":(?=[\w+'-]+:)")


def escape(text: str) -> str:
    """Text for a message: neutralised (nothing invisible or reordering), escaped, and unable to
    format (no bold, italics, strike, code or emoji shortcodes from a stranger)."""
    text = _SHORTCODE.sub("\u2236", slack_escape(neutralise(text)))
    return _LOOSE_MARK.sub(lambda mark: mark.group().translate(_LOOK_ALIKES), text)


def shown(text: str, limit: int) -> str:
    """A stranger's text as a message shows it: neutralised, on one line, cut to `limit`, escaped."""
    return escape(truncate(text, limit))


def truncate(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fit(mrkdwn: str, limit: int = SECTION_LIMIT) -> str:
    """Escaped mrkdwn cut to at most `limit` characters without splitting an entity (`&amp;`) or a
    `<link|label>`: a cut inside one drops it whole, and "…" marks the cut."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    head = mrkdwn[: limit - 1]
    while True:
        opened = head.rfind("<")
        if opened != -1 and ">" not in head[opened:]:
            head = head[:opened]
            continue
        amp = head.rfind("&")
        if amp != -1 and ";" not in head[amp:]:
            head = head[:amp]
            continue
        return head.rstrip() + "…"


_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f-\x9f]+", re.IGNORECASE)


def safe_url(url) -> str | None:
    """The URL if a link may point there: http(s), no whitespace or control or invisible character
    anywhere (a trailing newline too), at most URL_LIMIT long; else None."""
    if not isinstance(url, str) or len(url) > URL_LIMIT or not _URL.fullmatch(url) or _INVISIBLE.search(url):
        return None
    return url


def safe_link(url: str | None, label: str) -> str:
    """`<url|label>` only for safe http(s) URLs, with `|`, `<` and `>` percent-encoded and `&` escaped
    so a URL cannot forge a label or an entity; otherwise the escaped label alone."""
    text = fit(shown(label, LABEL_CHARS), LABEL_CHARS + 100) or "(untitled)"  # Slack refuses empty text
    href = safe_url(url)
    if href is None:
        return text
    href = href.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace("&", "&amp;")
    return f"<{href}|{text}>" if len(href) <= URL_LIMIT else text


def _posted_by(author: str | None, source: str) -> str:
    """The link label for posts without a title, such as tweets and comments."""
    return f"{author} on {source.split('/')[-1]}" if author else f"post on {source}"


def _percent(confidence: float) -> str:
    return f"{round(100 * confidence)}%"


@dataclass(frozen=True)
class MessageItem:
    """One mention as a group message lists it."""

    mention_id: int
    reason: str
    brand_name: str
    source: str
    url: str | None
    title: str | None
    text: str
    author: str | None
    reach: int | None
    labels: Labels
    reply_by: datetime | None
    held_by: str | None = None  # "silence #3 (“launch day”)" once released
    also: tuple[tuple[str, str | None], ...] = ()  # cross-posts of the same text: (source id, url)
    urgent: str | None = None  # why it is urgent ("reach 15.4k"), on an urgent route only


def compact(number: int) -> str:
    """15400 -> 15.4k, 2000000 -> 2M: a reach read at a glance."""
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(number) >= size:
            return f"{number / size:.1f}".removesuffix(".0") + suffix
    return str(number)


def urgent_reason(item: MessageItem) -> str:
    """What makes an item on an urgent route urgent: its reach when it has one, else the route itself."""
    return f"reach {compact(item.reach)}" if item.reach else "urgent route"


_PLURALS = {"Complaint": "complaints", "Question": "questions", "Negative mention": "negative mentions",
            "Suggestion": "suggestions", "Negative news": "negative news items", "Needs action": "mentions needing action"}


def entry_of(item: MessageItem, brand_id: str = "") -> MessageEntry:
    """An alert item as the neutral message carries it (everything any receiver shows)."""
    labels = item.labels
    return MessageEntry(
        mention_id=item.mention_id, brand=brand_id, brand_name=item.brand_name, source=item.source,
        reason=item.reason, url=item.url, title=item.title, text=item.text, author=item.author, reach=item.reach,
        sentiment=labels.sentiment, sentiment_confidence=labels.sentiment_scores.get(labels.sentiment, 0.0),
        intent=labels.intent, intent_confidence=labels.intent_scores.get(labels.intent, 0.0),
        needs_reply=labels.needs_reply, low_confidence=labels.low_confidence, reply_by=item.reply_by,
        held_by=item.held_by, also=tuple(item.also), urgent=item.urgent)


def _item_blocks(item: MessageEntry) -> list[dict]:
    """Section `mention:<id>` (link), the excerpt, the facts, then the actions: the shared block-id convention."""
    excerpt = shown(item.text or item.title or "", EXCERPT_CHARS)
    who = shown(item.author, 80) if item.author else "unknown author"
    facts = [
        f"*{escape(item.source)}* · {who}" + (f" · reach {item.reach:,}" if item.reach is not None else "")
        + f" · {escape(item.brand_name)} · id `{item.mention_id}`",
        f"sentiment *{item.sentiment}* {_percent(item.sentiment_confidence)} · "
        f"intent *{item.intent}* {_percent(item.intent_confidence)}"
        + (" · low confidence" if item.low_confidence else ""),
    ]
    if item.urgent:
        facts.insert(0, f":rotating_light: *urgent*: {escape(item.urgent)}")
    if item.reply_by is not None:
        facts.append(f"reply by {slack_date(item.reply_by)}")
    if item.held_by:
        facts.append(f"held by {escape(item.held_by)}")
    link = safe_link(item.url, item.title or _posted_by(item.author, item.source))
    return [
        {"type": "section", "block_id": mention_block_id(item.mention_id),
         "text": {"type": "mrkdwn", "verbatim": True, "text": fit(link)}},
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                     "text": fit(f">{excerpt}") if excerpt else "_(no text)_"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": fit(f)} for f in facts]},
        *([also_block(item.mention_id, item.also)] if item.also else []),
        actions_block(item.mention_id),
    ]


def also_block(mention_id: int, links: tuple[tuple[str, str | None], ...]) -> dict:
    """"Also posted: acme/x (link) · acme/posts (link)": the cross-posts one item stands for."""
    listed = " · ".join(safe_link(url, source) for source, url in links[:10])
    more = f" and {len(links) - 10} more" if len(links) > 10 else ""
    return {"type": "context", "block_id": f"also:{mention_id}",
            "elements": [{"type": "mrkdwn", "verbatim": True, "text": fit(f"also posted: {listed}{more}", 2000)}]}


def with_crosspost(payload: dict, mention_id: int, source: str, url: str | None) -> dict:
    """The message with one more cross-post link on this mention's item (a later copy of its text)."""
    blocks = list(payload.get("blocks") or [])
    at = _block_index(blocks, f"also:{mention_id}")
    section = _block_index(blocks, mention_block_id(mention_id))
    if section is None:
        return payload
    previous = blocks[at]["elements"][0]["text"].removeprefix("also posted: ") if at is not None else ""
    added = safe_link(url, source)
    line = {"type": "context", "block_id": f"also:{mention_id}", "elements": [
        {"type": "mrkdwn", "verbatim": True,
         "text": fit(f"also posted: {previous + ' · ' if previous else ''}{added}", 2000)}]}
    if at is not None:
        blocks[at] = line
    else:
        actions = _block_index(blocks, f"actions:{mention_id}")
        blocks.insert(actions if actions is not None else _item_end(blocks, section), line)
    return {**payload, "blocks": blocks}


def group_header(items: list[MessageItem], total: int | None = None) -> str:
    """"Complaint: Acme Cloud" for one mention, "3 complaints about Acme Cloud" for a group."""
    total = total or len(items)
    brands = ", ".join(dict.fromkeys(neutralise(i.brand_name) for i in items))
    reasons = set(i.reason for i in items)
    if total == 1:
        return truncate(f"{items[0].reason}: {brands}", HEADER_LIMIT)
    if len(reasons) == 1:
        reason = items[0].reason
        return truncate(f"{total} {_PLURALS.get(reason, reason + ' mentions')} about {brands}", HEADER_LIMIT)
    return truncate(f"{total} mentions of {brands} need a look", HEADER_LIMIT)


def render_group(message: Message) -> dict:
    """The Slack receiver's rendering of a group's message (up to MAX_PER_MESSAGE mentions): a header,
    the part note, then each mention's blocks, buttons included."""
    header, note = message.summary, message.part
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}]
    if note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": fit(note)}]})
    for item in message.items:
        blocks += _item_blocks(item)
    excerpts = " · ".join(shown(i.text or i.title or "", FALLBACK_CHARS) for i in message.items)
    return {"text": fit(f"{escape(header)}: {excerpts}", TEXT_LIMIT), "blocks": blocks}


@dataclass(frozen=True)
class KudosItem:
    """One praise post as the kudos channel lists it, with a reply for a person to post."""

    mention_id: int
    brand_name: str
    source: str
    platform: str
    url: str | None
    title: str | None
    text: str
    author: str | None
    suggestion: str
    reply_by: datetime | None = None  # praise that speaks to the brand is owed a reply: it has a clock


def kudos_message(items: list[KudosItem], note: str | None = None, total: int | None = None) -> dict:
    """Praise for the kudos channel, grouped like alerts so a wave of praise is one message; each post
    with a suggested reply to post by hand (nothing is posted for you)."""
    brands = ", ".join(dict.fromkeys(neutralise(i.brand_name) for i in items))
    total = total or len(items)
    header = truncate(f"Praise for {brands} on {items[0].platform}" if total == 1
                      else f"{total} praise posts for {brands}", HEADER_LIMIT)
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}]
    if note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text": fit(note)}]})
    for item in items:
        excerpt = shown(item.text or item.title or "", EXCERPT_CHARS)
        who = shown(item.author, 80) if item.author else "someone"
        link = safe_link(item.url, item.title or _posted_by(item.author, item.source))
        blocks += [
            {"type": "section", "block_id": mention_block_id(item.mention_id),
             "text": {"type": "mrkdwn", "verbatim": True, "text": fit(link)}},
            {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                         "text": fit(f">{excerpt}") if excerpt else "_(no text)_"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True, "text":
                                              fit(f"*{escape(item.source)}* · {who} · "
                                                  f"{escape(item.platform)}")}]},
            {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                         "text": fit("Suggested reply (post it yourself):\n"
                                                     + shown(item.suggestion, 1000))}},
        ]
        if item.reply_by is not None:
            blocks += [{"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True,
                                                         "text": f"reply by {slack_date(item.reply_by)} · "
                                                                 f"id `{item.mention_id}`"}]},
                       actions_block(item.mention_id)]
    excerpts = " · ".join(shown(i.text or i.title or "", FALLBACK_CHARS) for i in items)
    return {"text": fit(f"{escape(header)}: {excerpts}", TEXT_LIMIT), "blocks": blocks}


_FAILURE_WORDS = {"auth": "credentials rejected", "rate_limited": "rate limited", "unavailable": "unreachable",
                  "gone": "not found", "bad_payload": "unreadable answers"}


def failure_reason(kind: str | None, message: str | None) -> str:
    """The reason in words a person reads at a glance; a spent read budget is told apart from a 429."""
    text = (message or "").lower()
    if kind == "rate_limited" and ("budget" in text or " cap " in f" {text} "):
        return "budget exhausted"
    return _FAILURE_WORDS.get(kind or "", kind or "failing")


def source_health_message(source_id: str, transition: str, kind: str | None, message: str | None) -> dict:
    """One message when a source breaks, one when it recovers: `kind` and `message` are the failure's."""
    reason = failure_reason(kind, message)
    if transition == "recovered":
        text = f":white_check_mark: Source {escape(source_id)} recovered (it was {reason})."
    else:
        text = (f":warning: Source {escape(source_id)} is failing ({kind}): {reason}. "
                f"{shown(redact(message or ''), 500)}")
    text = fit(text)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "verbatim": True, "text": text}}]}


# Block ids and action ids shared by the message builder, the Socket Mode handler and message updates:
# each mention in a message has a section `mention:<id>` and, while open, an actions block `actions:<id>`,
# which an update replaces by a context block `status:<id>` ("handled by @sam after 14 min").
ACTIONS = {"handled": "Handled", "snooze_1h": "Snooze 1h", "not_relevant": "Not relevant", "wrong_label": "Wrong label"}


def mention_block_id(mention_id: int) -> str:
    return f"mention:{mention_id}"


def actions_block(mention_id: int) -> dict:
    buttons = [{"type": "button", "action_id": action_id, "value": str(mention_id),
                "text": {"type": "plain_text", "text": label}} for action_id, label in ACTIONS.items()]
    buttons[0]["style"] = "primary"
    return {"type": "actions", "block_id": f"actions:{mention_id}", "elements": buttons}


def status_block(mention_id: int, status: str) -> dict:
    return {"type": "context", "block_id": f"status:{mention_id}",
            "elements": [{"type": "mrkdwn", "verbatim": True, "text": fit(status)}]}


# --- the reply clock: status lines, reminders, escalations -------------------------------------

PLATFORMS = display_names()  # platform type -> its name in a sentence ("answered on Reddit")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def format_age(delta) -> str:
    """A timedelta as people say it: "14 min", "2 h 5 min", "3 d 4 h", "under a minute"."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def net_text(value: float | None) -> str:
    """Net sentiment as the report and the digest print it: +0.13, -0.40, or – when nothing was labelled."""
    return "–" if value is None else f"{value:+.2f}"


def actor(by: str) -> str:
    """Who acted: a Slack user id becomes a mention Slack renders as @name; any other name is escaped."""
    if _SLACK_USER.match(by):
        return f"<@{by}>"
    return "@" + shown(by.lstrip("@"), 80)


def responder(via: str, name: str) -> str:
    """A platform account as its platform writes it (u/name, @handle), escaped: platforms let anyone pick one."""
    name = truncate(name, 80)
    known = {p.type: p for p in platforms()}
    return escape(known[via].account(name) if via in known else name)


def handled_status(by: str, via: str, after) -> str:
    if via in ("slack", "cli", "reaction"):
        return f":white_check_mark: handled by {actor(by)} after {format_age(after)}"
    platform = PLATFORMS.get(via, escape(via))
    return f":white_check_mark: answered on {platform} by {responder(via, by)} after {format_age(after)}"


def snoozed_status(by: str, until: datetime, now: datetime) -> str:
    return f":zzz: snoozed until {slack_date(until, with_date=until.date() != now.date())} by {actor(by)}"


def not_relevant_status(by: str) -> str:
    return f":no_entry_sign: marked not relevant by {actor(by)}"


def label_status(by: str, changes: list[tuple[str, str]]) -> str:
    """"label corrected by @sam: complaint → question"; `changes` are (old, new) label pairs."""
    return f":label: label corrected by {actor(by)}: " + ", ".join(f"{old} → {new}" for old, new in changes)


def _block_index(blocks: list[dict], block_id: str) -> int | None:
    return next((i for i, b in enumerate(blocks) if b.get("block_id") == block_id), None)


def with_status(payload: dict, mention_id: int, status: str, keep_actions: bool) -> dict:
    """The message with this mention's status line set: in place of its buttons once closed, or above
    them when `keep_actions` (a snooze can still be handled). Other mentions' blocks are untouched."""
    blocks = [b for b in payload.get("blocks") or [] if b.get("block_id") != f"status:{mention_id}"]
    at = _block_index(blocks, f"actions:{mention_id}")
    line = status_block(mention_id, status)
    if at is None:
        section = _block_index(blocks, mention_block_id(mention_id))
        blocks.insert(len(blocks) if section is None else _item_end(blocks, section), line)
    elif keep_actions:
        blocks.insert(at, line)
    else:
        blocks[at] = line
    return {**payload, "blocks": blocks}


def _item_end(blocks: list[dict], section: int) -> int:
    """Where the blocks of the mention whose section is at `section` end (the next block id'd `mention:`)."""
    for i in range(section + 1, len(blocks)):
        if str(blocks[i].get("block_id", "")).startswith("mention:"):
            return i
    return len(blocks)


def with_label_note(payload: dict, mention_id: int, note: str) -> dict:
    """The message with a `label:<id>` line above the mention's buttons (or status line)."""
    blocks = [b for b in payload.get("blocks") or [] if b.get("block_id") != f"label:{mention_id}"]
    line = {"type": "context", "block_id": f"label:{mention_id}",
            "elements": [{"type": "mrkdwn", "verbatim": True, "text": fit(note)}]}
    at = _block_index(blocks, f"status:{mention_id}")
    if at is None:
        at = _block_index(blocks, f"actions:{mention_id}")
    if at is None:
        section = _block_index(blocks, mention_block_id(mention_id))
        at = len(blocks) if section is None else _item_end(blocks, section)
    blocks.insert(at, line)
    return {**payload, "blocks": blocks}


def _summary(source: str, author: str | None, url: str | None, title: str | None, text: str) -> str:
    who = shown(author, 80) if author else "unknown author"
    link = safe_link(url, title or _posted_by(author, source))
    return f"{link} · *{escape(source)}* · {who}\n>{shown(text or title or '', 300)}"


def reminder_message(*, mention_id: int, brand_name: str, source: str, url: str | None, title: str | None,
                     text: str, author: str | None, deadline: datetime, now: datetime, in_thread: bool,
                     after_snooze: bool = False) -> dict:
    """A nudge into the alert's thread (or, without one, a top-level message that says what it is about)."""
    def due(when: str) -> str:
        if now < deadline:
            return f"reply due by {when} (in {format_age(deadline - now)})"
        return f"{format_age(now - deadline)} past its reply time ({when})"

    lead = "Snooze over: still unanswered" if after_snooze else "Still unanswered"
    line = f":alarm_clock: {lead}, {due(slack_date(deadline))}."
    if not in_thread:
        line += f"\n{escape(brand_name)}: " + _summary(source, author, url, title, text)
    return {"text": fit(f"{lead} ({escape(brand_name)}), {due(f'{deadline:%Y-%m-%d %H:%M} UTC')}", TEXT_LIMIT),
            "blocks": [{"type": "section", "block_id": f"reminder:{mention_id}",
                        "text": {"type": "mrkdwn", "verbatim": True, "text": fit(line)}}]}


ALERT_LINK = "{alert_link}"  # in an outbox payload with `link_of`: the sender puts that message's link here


def escalation_message(*, mention_id: int, brand_name: str, source: str, url: str | None, title: str | None,
                       text: str, author: str | None, promise, deadline: datetime, now: datetime,
                       escalate_to: tuple[str, ...], alert_link: str | None = None) -> dict:
    """The one message at the deadline: pings the configured people (our own text, so real mentions);
    `alert_link` when it goes to another channel than the alert it escalates."""
    pings = " ".join(f"<!subteam^{who}>" if who.startswith("S") else f"<@{who}>" for who in escalate_to)
    late = f", {format_age(now - deadline)} ago" if now - deadline >= timedelta(minutes=1) else ""
    line = (f":rotating_light: {pings + ' ' if pings else ''}Unanswered past the {format_age(promise)} promise "
            f"(due {slack_date(deadline)}{late}): {escape(brand_name)}\n"
            + (f"Escalating {alert_link}\n" if alert_link else "")
            + _summary(source, author, url, title, text))
    return {"text": fit(f"{pings + ' ' if pings else ''}Unanswered past its reply time: {escape(brand_name)}",
                        TEXT_LIMIT),
            "blocks": [{"type": "section", "block_id": f"escalation:{mention_id}",
                        "text": {"type": "mrkdwn", "verbatim": True, "text": fit(line)}}]}
