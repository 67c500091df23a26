"""The numbers behind `mentionwatch report`, the weekly digest and spike detection.

Counting happens in SQL (GROUP BY brand, UTC day, source, with sentiments and intents of each
mention's newest label pivoted into columns), so a report over a million mentions reads back a few
hundred rows; days roll up into weeks in Python. Only the complaint terms need text, and they are
read from the newest complaints only (TERMS_SAMPLE).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Callable, Literal, Sequence

from rich.table import Table

from alerts.messages import net_text
from monitor.config import Brand, Settings
from monitor.responses import response_stats
from monitor.store import Store

Period = Literal["day", "week"]
SENTIMENTS = ("negative", "neutral", "positive")
INTENTS = ("complaint", "question", "praise", "suggestion", "other")
TERMS_SAMPLE = 5000  # newest complaints per brand whose words are counted
TOP_TERMS = 10
STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further get got had hadn't has hasn't have haven't having he her here hers herself him himself
his how i i'm i've if in into is isn't it it's its itself just let's me more most much my myself no nor not
now of off on once only or other our ours ourselves out over own really same she should shouldn't so some
still such than that that's the their theirs them themselves then there there's these they they're this
those through to too under until up us very was wasn't we we're were weren't what when where which while who
whom why will with won't would wouldn't you you're your yours yourself yourselves also even again ever every
im ive dont cant doesnt isnt wont one two since yet via amp http https www com
""".split())
TOKEN = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]{2}", re.UNICODE)
LINKS = re.compile(r"https?://\S+|[@#]\w+")
POSSESSIVE = re.compile(r"'s$")


@dataclass
class PeriodStats:
    period: str  # first day of the period, YYYY-MM-DD (UTC)
    volume: int = 0
    by_source: Counter = field(default_factory=Counter)
    sentiment: Counter = field(default_factory=Counter)
    intents: Counter = field(default_factory=Counter)

    @property
    def labelled(self) -> int:
        return sum(self.sentiment.values())

    def share(self, sentiment: str) -> float | None:
        return self.sentiment[sentiment] / self.labelled if self.labelled else None

    @property
    def net(self) -> float | None:
        """(positive - negative) / labelled: +1 all praise, -1 all anger, None with nothing labelled."""
        if not self.labelled:
            return None
        return (self.sentiment["positive"] - self.sentiment["negative"]) / self.labelled

    def add(self, other: "PeriodStats") -> None:
        self.volume += other.volume
        self.by_source.update(other.by_source)
        self.sentiment.update(other.sentiment)
        self.intents.update(other.intents)


@dataclass
class BrandReport:
    brand: str
    name: str
    since: datetime
    until: datetime
    by: Period
    periods: list[PeriodStats]
    terms: list[tuple[str, int]]
    complaints_read: int
    responses: list = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)

    @property
    def total(self) -> PeriodStats:
        out = PeriodStats("total")
        for p in self.periods:
            out.add(p)
        return out

    def as_dict(self) -> dict:
        total = self.total
        return {
            "brand": self.brand, "name": self.name, "since": self.since.isoformat(), "until": self.until.isoformat(),
            "by": self.by, "volume": total.volume, "volume_by_source": dict(total.by_source),
            "net_sentiment": total.net,
            "periods": [_period_dict(p) for p in self.periods],
            "complaint_terms": [{"term": term, "count": n} for term, n in self.terms],
            "complaints_read_for_terms": self.complaints_read,
            "responses": [_plain(r) for r in self.responses],
            "gaps": [_plain(g) for g in self.gaps],
        }


def _period_dict(p: PeriodStats) -> dict:
    return {"period": p.period, "volume": p.volume, "by_source": dict(p.by_source),
            "sentiment": {s: p.sentiment[s] for s in SENTIMENTS},
            "share": {s: p.share(s) for s in SENTIMENTS}, "net_sentiment": p.net,
            "intents": {i: p.intents[i] for i in INTENTS}}


def _plain(value):
    """JSON-ready: dataclasses to dicts, datetimes to ISO, durations to seconds."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


# --- counts -------------------------------------------------------------------------------------

def period_of(day: str, by: Period) -> str:
    """Days roll up into ISO weeks (named by their Monday) in Python: grouping by day in SQL is cheaper."""
    if by == "day":
        return day
    moment = date.fromisoformat(day)
    return (moment - timedelta(days=moment.weekday())).isoformat()


def counts(store: Store, brands: Sequence[str], start: datetime, end: datetime,
           by: Period | None) -> dict[str, dict[str, PeriodStats]]:
    """brand -> period -> counts; `by=None` gives one period, "total", per brand."""
    out: dict[str, dict[str, PeriodStats]] = {b: {} for b in brands}
    for brand, day_name, source, volume, *numbers in store.daily_counts(brands, start, end):
        name = period_of(day_name, by) if by else "total"
        stats = out[brand].setdefault(name, PeriodStats(name))
        stats.volume += volume
        stats.by_source[source] += volume
        stats.sentiment.update({s: n for s, n in zip(SENTIMENTS, numbers) if n})
        stats.intents.update({i: n for i, n in zip(INTENTS, numbers[len(SENTIMENTS):]) if n})
    return out


# --- terms ----------------------------------------------------------------------------------------

def brand_words(brand: Brand) -> set[str]:
    """Words of the brand's own names, handles, hashtags and domains: not news in its complaints."""
    words: set[str] = set()
    for term in (term for terms in brand.terms().values() for term in terms):
        words.update(w.lower() for w in re.split(r"[\W_]+", term) if w)
    return words


def top_terms(texts: Sequence[str], exclude: set[str], limit: int = TOP_TERMS) -> list[tuple[str, int]]:
    """Most frequent words, each counted once per text, without stopwords, the brand's words or URLs."""
    counter: Counter = Counter()
    for text in texts:
        words = {_word(w) for w in TOKEN.findall(LINKS.sub(" ", text.lower()))}
        counter.update(w for w in words if len(w) > 2 and w not in STOPWORDS and w not in exclude)
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


@lru_cache(maxsize=1 << 16)
def _word(token: str) -> str:
    """A token without its possessive 's and edge quotes; cached, as a report reads the same words 100,000 times."""
    return POSSESSIVE.sub("", token.replace("’", "'")).strip("'-")


# --- the report -----------------------------------------------------------------------------------

def build_report(store: Store, settings: Settings, *, since: datetime, now: datetime, by: Period = "week",
                 brand: str | None = None,
                 progress: Callable[[int, str], None] = lambda done, step: None) -> list[BrandReport]:
    """One BrandReport per configured brand (or just `brand`), periods oldest first. `progress` hears
    of each step (steps done, what comes next): counting, then each brand's terms and replies."""
    brands = [brand] if brand else list(settings.brands)
    progress(0, "report: counting mentions")
    table = counts(store, brands, since, now, by)
    gaps = store.gaps()
    out = []
    for done, brand_id in enumerate(brands, 1):
        progress(done, f"report: {brand_id}, complaint terms and replies")
        cfg = settings.brands[brand_id]
        texts = store.complaint_texts(brand_id, since, now, TERMS_SAMPLE)
        out.append(BrandReport(
            brand=brand_id, name=cfg.names[0], since=since, until=now, by=by,
            periods=sorted(table[brand_id].values(), key=lambda p: p.period),
            terms=top_terms(texts, brand_words(cfg)), complaints_read=len(texts),
            responses=response_stats(store, settings, brand=brand_id, since=since, now=now),
            gaps=[g for g in gaps if g["source_id"].startswith(f"{brand_id}/") and _gap_in(g, since, now)]))
    return out


def _gap_in(gap: dict, since: datetime, now: datetime) -> bool:
    end = gap["window_end"] or gap["recorded_at"]
    start = gap["window_start"] or gap["recorded_at"]
    return end >= since and start <= now


# --- output -----------------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def report_tables(report: BrandReport) -> list[Table]:
    """The report as rich tables: periods, sources, complaint terms, gaps (response times come from their module)."""
    sources = sorted({s for p in report.periods for s in p.by_source})
    periods = Table("period", "volume", *sources, "negative", "neutral", "positive", "net", *INTENTS,
                    title=f"{report.name} ({report.brand}): by {report.by}, {report.since:%Y-%m-%d} to "
                          f"{report.until:%Y-%m-%d}")
    for p in [*report.periods, report.total]:
        periods.add_row(p.period, str(p.volume), *(str(p.by_source[s]) for s in sources),
                        *(f"{p.sentiment[s]} ({_pct(p.share(s))})" for s in SENTIMENTS), net_text(p.net),
                        *(str(p.intents[i]) for i in INTENTS), end_section=p is report.periods[-1])
    terms = Table("term", "complaints", title=f"Most frequent complaint terms (newest {report.complaints_read:,} "
                                               f"complaints)")
    for term, n in report.terms:
        terms.add_row(term, str(n))
    tables = [periods, terms]
    if report.gaps:
        gaps = Table("source", "from", "to", "≈ items", "why", title="Coverage gaps")
        for gap in report.gaps:
            gaps.add_row(gap["source_id"], f"{gap['window_start']:%Y-%m-%d %H:%M}" if gap["window_start"] else "?",
                         f"{gap['window_end']:%Y-%m-%d %H:%M}" if gap["window_end"] else "?",
                         str(gap["estimated_count"] or "?"), gap["reason"])
        tables.append(gaps)
    return tables


def csv_rows(reports: Sequence[BrandReport]) -> tuple[list[str], list[dict]]:
    """One row per brand and period (spreadsheet-friendly), a volume column per source seen."""
    sources = sorted({s for r in reports for p in r.periods for s in p.by_source})
    fields = ["brand", "period", "volume", *(f"volume_{s}" for s in sources), *SENTIMENTS,
              *(f"{s}_share" for s in SENTIMENTS), "net_sentiment", *INTENTS]
    rows = []
    for report in reports:
        for p in report.periods:
            rows.append({"brand": report.brand, "period": p.period, "volume": p.volume,
                         **{f"volume_{s}": p.by_source[s] for s in sources},
                         **{s: p.sentiment[s] for s in SENTIMENTS},
                         **{f"{s}_share": _round(p.share(s)) for s in SENTIMENTS},
                         "net_sentiment": _round(p.net), **{i: p.intents[i] for i in INTENTS}})
    return fields, rows


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 4)
