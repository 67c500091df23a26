"""Matcher throughput on tweet-length posts with 10, 1,000 and 10,000 configured terms, then 1,000
brands of 10 terms and a query each, on 2 cores, side by side with a naive loop of one regex per brand.

Run: `python benchmarks/matcher.py [--posts 100000]`. Everything is generated from a fixed seed,
so two runs on the same machine measure the same work. Targets: >= 50,000 posts/s at 1,000 terms on
one core; >= 100,000 posts/s with 1,000 brands and their queries on 2 cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.matcher import Matcher  # noqa: E402

TERMS_PER_BRAND = 10
TERM_COUNTS = (10, 1_000, 10_000)
MENTION_SHARE = 0.03
TARGET_POSTS_PER_S = 50_000
QUERY_BRANDS = 1_000
QUERY_TARGET_POSTS_PER_S = 100_000
WORKERS = 2
NAIVE_POSTS = 2_000  # the naive loop is slow: timed on the first posts only
WORDS = """the a to and of in is it for on that this with was just my so but not be are have at you
they new app update release today again why how does anyone know still after since support team
account login billing invoice price plan free trial bug crash slow fast great love hate broken fixed
working outage down status page dashboard api docs setup install error message weird honestly really
pretty super totally week morning tonight yesterday customer service refund email ticket reply
waiting hours minutes phone mobile desktop browser chrome android iphone laptop server cloud data
backup sync upload download file folder share link team project deploy build pipeline release notes
feature request please add would nice awesome terrible disappointed impressed switched moving from
to competitor cheaper better worse than ever lol wow ok thanks hey folks""".split()
PUNCT = [",", ".", "!", "?", "", "", "", ""]


def pronounceable(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice("bcdfgklmnprstvz") + rng.choice("aeiou") + rng.choice(["", "n", "r", "x"])
                   for _ in range(syllables))


def make_brands(term_count: int, rng: random.Random) -> dict[str, dict[str, list[str]]]:
    """`term_count` distinct terms, ten per brand: 5 names (some two words), 2 handles, 2 hashtags, 1 domain."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < term_count:
        word = pronounceable(rng, rng.randint(2, 4))
        if word not in seen:
            seen.add(word)
            words.append(word)
    brands = {}
    for first in range(0, term_count, TERMS_PER_BRAND):
        group = words[first:first + TERMS_PER_BRAND]
        brands[f"brand{first // TERMS_PER_BRAND}"] = {
            "name": [w.capitalize() if i % 2 else f"{w.capitalize()} Cloud" for i, w in enumerate(group[:5])],
            "handle": ["@" + w for w in group[5:7]],
            "hashtag": ["#" + w for w in group[7:9]],
            "domain": [w + ".io" for w in group[9:]],
            "exclude": [f"{group[0]} anvil"],
        }
    return brands


def make_posts(count: int, terms: list[str], rng: random.Random) -> list[str]:
    """Posts of ~100-280 characters of everyday words; MENTION_SHARE of them name a configured term."""
    posts = []
    for _ in range(count):
        target = rng.randint(100, 280)
        words: list[str] = []
        length = 0
        while length < target:
            word = rng.choice(WORDS) + rng.choice(PUNCT)
            words.append(word)
            length += len(word) + 1
        if rng.random() < MENTION_SHARE:
            words[rng.randrange(len(words))] = rng.choice(terms)
        if rng.random() < 0.2:
            words.append(f"https://example.com/{pronounceable(rng, 2)}")
        posts.append(" ".join(words)[:280])
    return posts


def best_of_three(matcher: Matcher, posts: list[str]) -> tuple[float, int]:
    best, matched = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        matched = sum(1 for post in posts if matcher.match(post)[0] is not None)
        best = min(best, time.perf_counter() - start)
    return best, matched


def with_queries(brands: dict[str, dict[str, list[str]]]) -> dict[str, dict]:
    """Each brand's terms as a query, in the shapes people write: terms NOT an exclusion; terms NEAR a
    complaint word; a case-sensitive name with context; terms and an after-labelling field."""
    out = {}
    for i, (brand_id, kinds) in enumerate(brands.items()):
        terms = " OR ".join(f'"{t}"' if " " in t else t for k, v in kinds.items() if k != "exclude" for t in v)
        shape = i % 4
        if shape == 0:
            query = f'({terms}) NOT "{kinds["exclude"][0]}"'
        elif shape == 1:
            query = f"({terms}) NEAR/5 (down OR outage OR refund OR broken)"
        elif shape == 2:
            query = f"{{{kinds['name'][1]}}} OR ({terms}) NOT (hate OR lol)"
        else:
            query = f"({terms}) AND (intent:complaint OR sentiment:negative OR reach:>=100)"
        out[brand_id] = {**kinds, "query": query}
    return out


class NaiveRegexMatcher:
    """The baseline: per brand, one regex of its terms (whole words, casefolded text) and one of its
    exclusions, tried one brand after another."""

    def __init__(self, brands: dict[str, dict[str, list[str]]]):
        self.brands = []
        for brand_id, kinds in brands.items():
            terms = [t for k, v in kinds.items() if k not in ("exclude", "query") for t in v]
            include = re.compile(r"(?<![\w@#])(?:" + "|".join(re.escape(t.casefold()) for t in terms) + r")(?!\w)")
            exclude = re.compile("|".join(re.escape(t.casefold()) for t in kinds.get("exclude", ())) or "(?!)")
            self.brands.append((brand_id, include, exclude))

    def match(self, text: str):
        norm = " ".join(text.casefold().split())
        found = [b for b, inc, exc in self.brands if inc.search(norm) and not exc.search(norm)]
        return (found or None), None


_WORKER: Matcher | None = None
_POSTS: list[str] = []


def _count(bounds: tuple[int, int]) -> int:
    return sum(1 for post in _POSTS[bounds[0]:bounds[1]] if _WORKER.match(post)[0] is not None)


def on_cores(matcher: Matcher, posts: list[str], workers: int) -> tuple[float, int]:
    """Posts split over `workers` forked processes that share the built matcher and the posts (only
    index ranges and counts cross between processes)."""
    global _WORKER, _POSTS
    _WORKER, _POSTS = matcher, posts
    chunk = max(1, len(posts) // (workers * 4))
    parts = [(i, min(i + chunk, len(posts))) for i in range(0, len(posts), chunk)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_count, [(0, 1)] * workers)
        best, matched = float("inf"), 0
        for _ in range(3):
            start = time.perf_counter()
            matched = sum(pool.map(_count, parts))
            best = min(best, time.perf_counter() - start)
    return best, matched


def query_section(count: int) -> None:
    rng = random.Random(QUERY_BRANDS)
    brands = with_queries(make_brands(QUERY_BRANDS * TERMS_PER_BRAND, rng))
    terms = [t for kinds in brands.values() for k, v in kinds.items() if k not in ("exclude", "query") for t in v]
    posts = make_posts(count, terms, rng)
    start = time.perf_counter()
    matcher = Matcher(brands)
    build = time.perf_counter() - start
    load = os.getloadavg()[0]
    print(f"\n{QUERY_BRANDS:,} brands x {TERMS_PER_BRAND} terms and a query each ({matcher.term_count:,} keys, built "
          f"in {build:.2f} s), {count:,} posts; load average {load:.1f} on {os.cpu_count()} cores before the run")
    one, matched = best_of_three(matcher, posts)
    two, matched2 = on_cores(matcher, posts, WORKERS)
    naive = NaiveRegexMatcher(brands)
    sample = posts[:NAIVE_POSTS]
    start = time.perf_counter()
    naive_matched = sum(1 for post in sample if naive.match(post)[0] is not None)
    naive_s = time.perf_counter() - start
    ours_sample = sum(1 for post in sample if matcher.match(post)[0] is not None)
    print(f"{'':>2}{'matcher':<40} {'posts/s':>10} {'matched':>9}")
    print(f"{'':>2}{'queries, Aho-Corasick, 1 core':<40} {count / one:>10,.0f} {matched:>9,}")
    print(f"{'':>2}{f'queries, Aho-Corasick, {WORKERS} processes':<40} {count / two:>10,.0f} {matched2:>9,}")
    print(f"{'':>2}{f'naive regex loop, 1 core ({NAIVE_POSTS:,} posts)':<40} {NAIVE_POSTS / naive_s:>10,.0f} "
          f"{naive_matched:>9,}   (terms only, no queries; ours on the same posts: {ours_sample:,})")
    print(f"{'':>2}-> {count / two / (NAIVE_POSTS / naive_s):,.0f}x the naive loop on {WORKERS} cores "
          f"({count / one / (NAIVE_POSTS / naive_s):,.0f}x on one); "
          f"{'meets' if count / two >= QUERY_TARGET_POSTS_PER_S else 'MISSES'} the target of "
          f"{QUERY_TARGET_POSTS_PER_S:,} posts/s on {WORKERS} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000, help="posts per timed run")
    args = parser.parse_args()
    print(f"matcher throughput, {args.posts:,} posts of 100-280 chars, {MENTION_SHARE:.0%} naming a brand, "
          f"best of 3 (Python {sys.version.split()[0]})")
    print(f"{'terms':>7} {'brands':>7} {'build s':>8} {'matched':>8} {'seconds':>8} {'posts/s':>10}")
    for term_count in TERM_COUNTS:
        rng = random.Random(term_count)
        brands = make_brands(term_count, rng)
        terms = [t for kinds in brands.values() for k, v in kinds.items() if k != "exclude" for t in v]
        posts = make_posts(args.posts, terms, rng)
        start = time.perf_counter()
        matcher = Matcher(brands)
        build = time.perf_counter() - start
        seconds, matched = best_of_three(matcher, posts)
        rate = len(posts) / seconds
        print(f"{term_count:>7,} {len(brands):>7,} {build:>8.3f} {matched:>8,} {seconds:>8.3f} {rate:>10,.0f}")
        if term_count == 1_000:
            verdict = "meets" if rate >= TARGET_POSTS_PER_S else "MISSES"
            print(f"{'':>7} -> {verdict} the target of {TARGET_POSTS_PER_S:,} posts/s with 1,000 terms")
    query_section(args.posts)


if __name__ == "__main__":
    main()
