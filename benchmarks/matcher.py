"""Matcher throughput on tweet-length posts with 10, 1,000 and 10,000 configured terms.

Run: `python benchmarks/matcher.py [--posts 100000]`. Everything is generated from a fixed seed,
so two runs on the same machine measure the same work. Target: >= 50,000 posts/s at 1,000 terms.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.matcher import Matcher  # noqa: E402

TERMS_PER_BRAND = 10
TERM_COUNTS = (10, 1_000, 10_000)
MENTION_SHARE = 0.03
TARGET_POSTS_PER_S = 50_000
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


if __name__ == "__main__":
    main()
