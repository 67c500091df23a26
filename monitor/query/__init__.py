"""The query language: grammar, parser, syntax tree, three-valued evaluation and platform translation.

A query is what monitors have converged on (Boolean operators, phrases, proximity, fields); see the
README's "Queries" section. Where things are: the grammar, parser and syntax tree in `syntax.py`;
the facts about a post, evaluation, the matcher's prefilter keys and the after-labelling step in
`evaluate.py`; brands and sources as queries in `brands.py`; translation into a platform's search
(the shared machinery; each platform's dialect is beside its connector) in `translate.py`; the checks behind `validate` (never/always, where a mistake is in the
config file) in `checks.py`. This package re-exports what the rest of the product uses.
"""

from __future__ import annotations

from monitor.query.brands import brand_kinds, brand_node
from monitor.query.checks import never_or_always, query_problem_at, query_warnings, valid_query
from monitor.query.evaluate import Facts, anchors, evaluate, facts_of, kept_after_labels, true_terms
from monitor.query.syntax import FALSE, TRUE, And, Const, Node, Or, QueryError, Term, parse, terms_in, unparse
from monitor.query.translate import Dialect, Search, paren, platform_search, search_text, search_words

__all__ = ["FALSE", "TRUE", "And", "Const", "Dialect", "Facts", "Node", "Or", "QueryError", "Search", "Term", "anchors",
           "brand_kinds", "brand_node", "evaluate", "facts_of", "kept_after_labels", "never_or_always", "paren", "parse",
           "platform_search", "query_problem_at", "query_warnings", "search_text", "search_words", "terms_in",
           "true_terms", "unparse", "valid_query"]
