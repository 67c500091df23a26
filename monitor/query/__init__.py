"""The query language: grammar, parser, syntax tree, three-valued evaluation and platform translation.

A query is what monitors have converged on (Boolean operators, phrases, proximity, fields); see the
README's "Queries" section. Where things are: the grammar, parser and syntax tree in `syntax.py`;
the facts about a post, evaluation, the matcher's prefilter keys and the after-labelling step in
`evaluate.py`; brands and sources as queries in `brands.py`; X's, Reddit's and Hacker News's search
syntax in `translate.py`; the checks behind `validate` (never/always, where a mistake is in the
config file) in `checks.py`. This package re-exports what the rest of the product uses.
"""

from __future__ import annotations

from monitor.query.brands import brand_kinds, brand_node
from monitor.query.checks import never_or_always, query_problem_at, query_warnings, valid_query
from monitor.query.evaluate import Facts, anchors, evaluate, facts_of, kept_after_labels, true_terms
from monitor.query.syntax import FALSE, TRUE, And, Const, Node, Or, QueryError, Term, parse, terms_in, unparse
from monitor.query.translate import platform_search, to_hackernews, to_reddit, to_x

__all__ = ["FALSE", "TRUE", "And", "Const", "Facts", "Node", "Or", "QueryError", "Term", "anchors", "brand_kinds",
           "brand_node", "evaluate", "facts_of", "kept_after_labels", "never_or_always", "parse", "platform_search",
           "query_problem_at", "query_warnings", "terms_in", "to_hackernews", "to_reddit", "to_x", "true_terms",
           "unparse", "valid_query"]
