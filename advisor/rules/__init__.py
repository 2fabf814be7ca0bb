"""The declarative rule engine: facts about a head, YAML rules over them, configured candidate losses."""

from advisor.rules.engine import Candidate, candidates, candidates_from, check_rule, check_rules, evaluate
from advisor.rules.facts import Facts, facts_for
from advisor.rules.loader import RULES_ENV, Rule, RuleLoadError, RuleSet, load_rule_file, load_rules
from advisor.rules.schema import PostHoc

__all__ = [
    "RULES_ENV",
    "Candidate",
    "Facts",
    "PostHoc",
    "Rule",
    "RuleLoadError",
    "RuleSet",
    "candidates",
    "candidates_from",
    "check_rule",
    "check_rules",
    "evaluate",
    "facts_for",
    "load_rule_file",
    "load_rules",
]
