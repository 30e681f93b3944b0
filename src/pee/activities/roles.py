"""Built-in role agents: the seed's (and BMAD's) roles as pure functions of their inputs.

`generate(agent, inputs)` returns every output the agent declares and every shared key it writes,
as small structured JSON data (< 10 KB each), deterministically: no clock, no randomness, and the
result does not depend on the order of `inputs`. Content is derived from what the agent read, so
downstream documents reflect upstream ones: the pm's stories are written for the analyst's
target users, the ux_expert's screens cover the pm's stories, the architect's API serves the
pm's functional requirements, the developer's files implement the story the sm drafted.

How: `Facts` finds each fact (target users, stories, requirements...) in the inputs, either as an
input of that name ("analyst.target_users") or inside an upstream document (the project brief
carries the target users), and derives what is not there from the facts it has, down to the
project name. A role maps output names to facts; an output it does not know gets a generic
document (title, author role, one section per input read, digest). Names are compared
normalised: lower case, "-" and " " as "_", without a ".md"/".json"/".yaml"/".txt" ending;
".md" outputs are documents with a rendered "markdown" field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pee.engine.canonical import canonical_json as canonical
from pee.engine.canonical import digest
from pee.engine.compiled import CompiledAgent

# every value stays well under 10 KB of JSON
LIMIT_BYTES = 9_000
MAX_ITEMS = 6
MAX_FILES = 12
DOC_SUFFIXES = (".md", ".json", ".yaml", ".yml", ".txt")

# (name, description, [(want, so that)]) - picked deterministically by the project's digest
USER_ARCHETYPES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "first-time visitor",
        "someone evaluating {p} for the first time",
        (
            ("see what {p} offers before signing up", "I can decide quickly whether it fits"),
            ("create an account in under a minute", "I can start without friction"),
        ),
    ),
    (
        "regular user",
        "uses {p} several times a week",
        (
            ("pick up where I left off", "I never repeat work"),
            ("get notified when something needs my attention", "I can react in time"),
        ),
    ),
    (
        "team administrator",
        "manages people and permissions in {p}",
        (
            ("invite colleagues and set their roles", "everyone has the access they need"),
            ("review an activity log", "I can answer who changed what"),
        ),
    ),
    (
        "mobile user",
        "uses {p} on a phone, often on the move",
        (
            ("finish the main task on a small screen", "I am not tied to a desk"),
            ("keep working on a weak connection", "a train tunnel never loses my changes"),
        ),
    ),
    (
        "support agent",
        "helps customers who are stuck in {p}",
        (
            ("look up a customer's recent actions", "I can diagnose problems quickly"),
            ("leave notes on a customer account", "the next agent has the context"),
        ),
    ),
    (
        "data analyst",
        "reports on how {p} is used",
        (
            ("export usage data as CSV", "I can analyse it in my own tools"),
            ("filter reports by date range", "I can compare periods"),
        ),
    ),
    (
        "integration developer",
        "connects {p} to other systems",
        (
            ("call a documented API with a token", "I can automate routine work"),
            ("receive webhooks when records change", "other systems stay in sync"),
        ),
    ),
    (
        "keyboard and screen-reader user",
        "navigates {p} without a mouse",
        (
            ("reach every action with the keyboard", "I can use the product at all"),
            ("hear a meaningful label on every control", "I know what each control does"),
        ),
    ),
)
CONSTRAINTS: tuple[tuple[str, str], ...] = (
    ("platform", "runs in current desktop and mobile browsers"),
    ("security", "encrypts personal data at rest and in transit"),
    ("performance", "answers 95% of requests within 300 ms"),
    ("availability", "stays available 99.9% of each month"),
    ("integration", "exposes a versioned HTTP API to other systems"),
    ("operations", "deploys as containers through an automated pipeline"),
    ("compliance", "keeps an audit trail of changes to user data"),
    ("accessibility", "meets WCAG 2.1 AA"),
)
FIRST_NAMES = ("Alex", "Sam", "Priya", "Jordan", "Mei", "Omar", "Lena", "Tomas")
READ_VERBS = (
    "see",
    "view",
    "look",
    "pick",
    "export",
    "filter",
    "get",
    "hear",
    "browse",
    "find",
    "search",
    "compare",
    "track",
    "receive",
    "review",
    "reach",
)
STOP_WORDS = frozenset(
    (
        "a",
        "an",
        "the",
        "my",
        "our",
        "their",
        "to",
        "in",
        "on",
        "with",
        "when",
        "what",
        "as",
        "of",
        "for",
        "and",
        "or",
        "under",
        "every",
        "something",
        "it",
        "its",
        "is",
        "be",
        "i",
        "me",
        "we",
        "by",
        "at",
        "from",
        "before",
        "after",
        "where",
    )
)
COMPONENTS = {
    "PageHeader": ("title, breadcrumbs and the signed-in user", ["title", "breadcrumbs"]),
    "FilterBar": ("narrows a list by text and facets", ["query", "facets", "onChange"]),
    "ResultList": ("paged, keyboard-navigable list of records", ["items", "page", "onSelect"]),
    "EditForm": ("validated form with inline errors", ["fields", "values", "errors", "onSubmit"]),
    "SubmitButton": ("primary action with a busy state", ["label", "busy", "disabled"]),
    "StatusToast": ("announces the outcome of an action", ["message", "level"]),
}
STACK_BY_AREA = {
    "platform": ("frontend", "TypeScript + React, responsive layouts, installable PWA"),
    "security": ("auth", "OIDC sign-in, TLS 1.3, column-level encryption for personal data"),
    "performance": ("cache", "Redis read-through cache for hot queries"),
    "availability": ("infrastructure", "containers across two availability zones"),
    "integration": ("api", "REST over HTTPS, OpenAPI 3.1, versioned under /api/v1"),
    "operations": ("delivery", "container images built and deployed by CI/CD"),
    "compliance": ("audit", "append-only audit table written in the same transaction"),
    "accessibility": ("ui_kit", "accessible component library (ARIA patterns)"),
}
TACTICS = {
    "platform": "responsive layouts tested on desktop and mobile viewports",
    "security": "encrypt at rest and in transit; least-privilege service accounts",
    "performance": "cache hot reads; index every filter column; p95 latency alert",
    "availability": "two replicas per service; health checks; rolling deploys",
    "integration": "contract tests against the OpenAPI document",
    "operations": "one pipeline builds, tests and deploys every change",
    "compliance": "audit rows written in the same transaction as the change",
    "accessibility": "automated axe checks plus keyboard-only walkthroughs",
}


# --- small helpers ----------------------------------------------------------------------------


def normalise(name: str) -> str:
    """Output and role names compared loosely: "Front-End-Spec.md" -> "front_end_spec"."""
    text = name.strip().lower()
    for suffix in DOC_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return re.sub(r"[-\s]+", "_", text)


def role_name(name: str) -> str:
    # imported here: the plan language's models (pydantic) are no worker's start-up cost
    from pee.engine.language.models import normalise_role

    return normalise_role(normalise(name))


def _rank(items: Sequence[Any], seed: str, key: Callable[[Any], str] = str) -> list[Any]:
    # a stable, input-dependent order: the same project always gets the same picks
    return sorted(items, key=lambda item: hashlib.sha256(f"{seed}|{key(item)}".encode()).digest())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _key_words(text: str, count: int = 2) -> list[str]:
    words = _words(text)
    if not words:
        return ["item"]
    rest = [word for word in words[1:] if word not in STOP_WORDS]
    return [words[0], *rest[: count - 1]]


def _slug(text: str) -> str:
    return "-".join(_key_words(text))


def _title(text: str) -> str:
    return " ".join(word.capitalize() for word in _key_words(text))


def _pascal(text: str) -> str:
    return "".join(word.capitalize() for word in _key_words(text))


def _text(value: Any, limit: int = 160) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        text = str(
            next(
                (
                    value[k]
                    for k in ("title", "name", "statement", "i_want", "id")
                    if isinstance(value.get(k), str)
                ),
                canonical(value),
            )
        )
    else:
        text = canonical(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(value: Any) -> str:
    """One line about any value, for generic documents."""
    if isinstance(value, list):
        first = f"; first: {_text(value[0], 80)}" if value else ""
        return f"{len(value)} item(s){first}"
    if isinstance(value, dict):
        if any(isinstance(value.get(k), str) for k in ("title", "name", "statement", "i_want")):
            return _text(value)
        keys = list(value)[:8]
        return f"mapping with {len(value)} key(s): {', '.join(map(str, keys))}"
    return _text(value)


def _size(value: Any) -> int:
    return len(canonical(value).encode())


def fit(value: Any, limit: int = LIMIT_BYTES) -> Any:
    """Trim a value to `limit` bytes of JSON: shorten the markdown, then drop list tails."""
    if _size(value) <= limit:
        return value
    if isinstance(value, dict) and isinstance(value.get("markdown"), str):
        value = {**value, "markdown": value["markdown"][:1500] + "\n\n(truncated)"}
    while _size(value) > limit:
        if isinstance(value, list) and value:
            value = value[:-1]
            continue
        if isinstance(value, dict):
            lists = [(len(canonical(v)), k) for k, v in value.items() if isinstance(v, list) and v]
            if lists:
                key = max(lists)[1]
                value = {**value, key: value[key][:-1]}
                continue
        return {"truncated": True, "summary": summary(value)}
    return value


def _markdown(title: str, sections: Sequence[tuple[str, Sequence[str]]]) -> str:
    lines = [f"# {title}"]
    for heading, body in sections:
        lines += ["", f"## {heading}", *[f"- {line}" for line in body]]
    return "\n".join(lines) + "\n"


def _items(value: Any, *keys: str) -> list[Any]:
    """Coerce whatever an upstream agent produced into a list of items.

    A list stays a list; a mapping that holds the list under one of `keys` gives that list; any
    other mapping or text is one item.
    """
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in keys:
            if isinstance(value.get(key), list):
                return value[key]
        return [value]
    return [value]


def _str_list(value: Any) -> list[str]:
    return [_text(item) for item in _items(value)]


# --- facts ------------------------------------------------------------------------------------


class Facts:
    """What an agent knows: found in its inputs, else derived from what it does know."""

    def __init__(
        self, agent: CompiledAgent, inputs: Mapping[str, Any], missing_inputs: Sequence[str] = ()
    ) -> None:
        self.agent = agent
        self.role = role_name(agent.role or agent.id)
        # sorted: the result must not depend on the order the snapshot was built in
        self.inputs = {key: inputs[key] for key in sorted(inputs)}
        self.missing = sorted(missing_inputs)
        # a BMAD step knows its workflow (pee.engine.language.bmad_agents): fullstack, service or
        # ui, and greenfield or brownfield; a native plan's agent is a full-stack greenfield one
        workflow = agent.settings.get("bmad_workflow")
        workflow = workflow if isinstance(workflow, Mapping) else {}
        self.project_kind = str(workflow.get("project_kind") or "fullstack")
        self.stage = str(workflow.get("stage") or "greenfield")
        self.workflow_name = str(workflow.get("name") or "")

    @property
    def has_frontend(self) -> bool:
        return self.project_kind != "service"

    @property
    def has_backend(self) -> bool:
        return self.project_kind != "ui"

    @cached_property
    def brief(self) -> str | None:
        """The brief the user gave the run (a plan input, not an upstream document)."""
        for key in ("project_brief", "brief", "idea", "project_description", "description"):
            for name, value in self.inputs.items():
                if (
                    "." not in name
                    and normalise(name) == key
                    and isinstance(value, str)
                    and value.strip()
                ):
                    return " ".join(value.split())
        return None

    @cached_property
    def sources(self) -> list[tuple[str, str]]:
        """(input, quote) for every upstream document and value this agent read."""
        return [(key, quote(value)) for key, value in self.inputs.items()][:MAX_FILES]

    def find(self, *names: str, nested: Sequence[str] | None = None) -> Any:
        """An input named so ("pm.user_stories", a plan input "project"), else a key named so
        inside an upstream document (only the `nested` names, default all): the shallowest
        match across all inputs wins."""
        wanted = [normalise(name) for name in names]
        for name in wanted:
            for key, value in self.inputs.items():
                if normalise(key.split(".", 1)[-1]) == name or normalise(key) == name:
                    return value
        inner = wanted if nested is None else [normalise(name) for name in nested]
        for name in inner:
            found = _search(list(self.inputs.values()), name)
            if found is not None:
                return found
        return None

    @cached_property
    def project(self) -> str:
        found = self.find("project", "project_name", "product", "product_name", "idea", "goal")
        if isinstance(found, dict):
            found = found.get("name") or found.get("title")
        if isinstance(found, str) and found.strip():
            return _text(found, 80)
        return "the product"

    # analyst ---------------------------------------------------------------------------------

    @cached_property
    def found_users(self) -> list[Any]:
        return _items(
            self.find("target_users", "users", nested=["target_users"]), "target_users", "users"
        )

    @cached_property
    def users(self) -> list[dict[str, Any]]:
        p = self.project
        raw = self.found_users
        if not raw:
            raw = [
                {
                    "name": name,
                    "description": text.format(p=p),
                    "needs": [{"want": w.format(p=p), "so_that": s} for w, s in needs],
                }
                for name, text, needs in _rank(USER_ARCHETYPES, p, key=lambda a: a[0])[:3]
            ]
        users = []
        for index, item in enumerate(raw[:MAX_ITEMS], start=1):
            data = item if isinstance(item, dict) else {"name": _text(item, 80)}
            name = _text(
                data.get("name") or data.get("title") or data.get("id") or f"user {index}", 80
            )
            needs = [_need(need, p) for need in _items(data.get("needs"))][:2]
            if not needs:
                # a user we only know by name: give them the needs of the closest archetype
                archetype = _rank(USER_ARCHETYPES, name, key=lambda a: a[0])[0]
                needs = [{"want": w.format(p=p), "so_that": s} for w, s in archetype[2]]
            users.append(
                {
                    "id": str(data.get("id") or f"U{index}"),
                    "name": name,
                    "description": _text(data.get("description") or f"{name} of {p}"),
                    "needs": needs,
                }
            )
        return users

    @cached_property
    def constraints(self) -> list[dict[str, Any]]:
        raw = _items(
            self.find("technical_constraints", "constraints"),
            "technical_constraints",
            "constraints",
        )
        if not raw:
            raw = [
                {"area": area, "constraint": text}
                for area, text in _rank(CONSTRAINTS, self.project, key=lambda c: c[0])[:3]
            ]
        result = []
        for index, item in enumerate(raw[:MAX_ITEMS], start=1):
            data = item if isinstance(item, dict) else {"constraint": _text(item)}
            text = _text(
                data.get("constraint") or data.get("statement") or data.get("text") or summary(data)
            )
            area = str(data.get("area") or data.get("category") or _area_of(text))
            result.append(
                {"id": str(data.get("id") or f"TC{index}"), "area": area, "constraint": text}
            )
        return result

    # pm --------------------------------------------------------------------------------------

    @cached_property
    def personas(self) -> list[dict[str, Any]]:
        raw = _items(
            self.find("user_personas", "personas", nested=["user_personas"]),
            "user_personas",
            "personas",
        )
        if raw:
            return [_persona_item(item, index) for index, item in enumerate(raw[:MAX_ITEMS], 1)]
        personas = []
        for index, user in enumerate(self.users, start=1):
            first = FIRST_NAMES[int(digest(user["name"])[:4], 16) % len(FIRST_NAMES)]
            personas.append(
                {
                    "id": f"P{index}",
                    "name": f"{first}, {user['name']}",
                    "user": user["id"],
                    "goals": [need["want"] for need in user["needs"]],
                    "frustrations": [f"today it is hard to {user['needs'][0]['want']}"],
                }
            )
        return personas

    @cached_property
    def found_stories(self) -> list[dict[str, Any]]:
        # only a document's "user_stories": requirements and screens list story ids as "stories"
        raw = _items(
            self.find("user_stories", "stories", "story", nested=["user_stories"]),
            "user_stories",
            "stories",
        )
        return [
            _story_item(item, index, self.project)
            for index, item in enumerate(raw[:MAX_ITEMS], start=1)
        ]

    @cached_property
    def stories(self) -> list[dict[str, Any]]:
        if self.found_stories:
            return self.found_stories
        stories: list[dict[str, Any]] = []
        persona_of = {p.get("user"): p["id"] for p in self.personas}
        for user in self.users:
            for rank, need in enumerate(user["needs"]):
                number = len(stories) + 1
                stories.append(
                    {
                        "id": f"US-{number}",
                        "as_a": user["name"],
                        "i_want": need["want"],
                        "so_that": need["so_that"],
                        "acceptance_criteria": _criteria(user["name"], need["want"], self.project),
                        "persona": persona_of.get(user["id"], ""),
                        "user": user["id"],
                        "priority": "must" if rank == 0 else "should",
                    }
                )
        return stories[:MAX_ITEMS]

    @cached_property
    def found_functional(self) -> list[dict[str, Any]]:
        raw = self.find("functional_requirements", "functional")
        if raw is None:
            requirements = self.find("requirements")
            raw = requirements.get("functional") if isinstance(requirements, dict) else None
        return [
            _requirement_item(item, index, "FR")
            for index, item in enumerate(_items(raw)[:MAX_ITEMS], start=1)
        ]

    @cached_property
    def functional(self) -> list[dict[str, Any]]:
        if self.found_functional:
            return self.found_functional
        return [
            {
                "id": f"FR-{index}",
                "statement": f"The system shall let {_article(story['as_a'])} {story['as_a']} "
                f"{story['i_want']}.",
                "capability": story["i_want"],
                "stories": [story["id"]],
            }
            for index, story in enumerate(self.stories, start=1)
        ]

    def want_of(self, requirement: Mapping[str, Any]) -> str:
        """What a functional requirement lets a user do: its story's want, else its text."""
        if requirement.get("capability"):
            return str(requirement["capability"])
        stories = {story["id"]: story for story in self.found_stories}
        for story_id in requirement.get("stories", []):
            if story_id in stories:
                return str(stories[story_id]["i_want"])
        statement = re.sub(
            r"^the system shall (let an? [^ ]+ )?",
            "",
            str(requirement["statement"]),
            flags=re.IGNORECASE,
        )
        return statement.rstrip(".")

    @cached_property
    def non_functional(self) -> list[dict[str, Any]]:
        raw = self.find("non_functional_requirements", "non_functional")
        if raw is None:
            requirements = self.find("requirements")
            raw = requirements.get("non_functional") if isinstance(requirements, dict) else None
        if raw is not None:
            return [
                _requirement_item(item, index, "NFR")
                for index, item in enumerate(_items(raw)[:MAX_ITEMS], start=1)
            ]
        return [
            {
                "id": f"NFR-{index}",
                "category": c["area"],
                "statement": f"The system {c['constraint']}.",
                "source": c["id"],
            }
            for index, c in enumerate(self.constraints, start=1)
        ]

    # ux_expert -------------------------------------------------------------------------------

    @cached_property
    def found_screens(self) -> list[Any]:
        return _items(self.find("screens", "ui_spec", nested=["screens"]), "screens")

    @cached_property
    def screens(self) -> list[dict[str, Any]]:
        if self.found_screens:
            return [
                _screen_item(item, index)
                for index, item in enumerate(self.found_screens[:MAX_ITEMS], start=1)
            ]
        screens = []
        for index, requirement in enumerate(self.functional, start=1):
            basis = self.want_of(requirement)
            screens.append(
                {
                    "id": f"S{index}",
                    "name": _title(basis),
                    "purpose": requirement["statement"],
                    "requirements": [requirement["id"]],
                    "stories": list(requirement["stories"]),
                    "components": _components_for(basis),
                }
            )
        return screens

    @cached_property
    def components(self) -> list[dict[str, Any]]:
        raw = _items(
            self.find(
                "component_specifications", "components", nested=["component_specifications"]
            ),
            "component_specifications",
            "components",
        )
        if raw:
            return [
                item if isinstance(item, dict) else {"name": _text(item, 60)}
                for item in raw[:MAX_ITEMS]
            ]
        used: dict[str, list[str]] = {}
        for screen in self.screens:
            for name in screen.get("components", []):
                used.setdefault(name, []).append(screen["id"])
        return [
            {
                "name": name,
                "purpose": COMPONENTS.get(name, ("shared UI element", []))[0],
                "props": list(COMPONENTS.get(name, ("", ["children"]))[1]),
                "states": ["default", "loading", "error"],
                "used_on": used[name],
            }
            for name in sorted(used)
        ]

    @cached_property
    def mobile_first(self) -> bool:
        text = canonical([self.users, self.constraints]).lower()
        return "mobile user" in text or "phone" in text or "small screen" in text

    @cached_property
    def ui_spec(self) -> dict[str, Any]:
        principles = ["one primary action per screen", "errors shown inline, next to the field"]
        if self.mobile_first:
            principles.insert(0, "mobile first: every screen works at 360 px wide")
        if any(c["area"] == "accessibility" for c in self.constraints):
            principles.append("WCAG 2.1 AA: contrast, focus order, labelled controls")
        return {
            "project": self.project,
            "platform": "responsive web, mobile first"
            if self.mobile_first
            else "responsive web, desktop primary",
            "design_principles": principles,
            "screens": self.screens,
        }

    @cached_property
    def journeys(self) -> list[dict[str, Any]]:
        journeys = []
        for index, persona in enumerate(self.personas, start=1):
            mine = [
                s
                for s in self.stories
                if s.get("persona") == persona["id"] or s.get("user") == persona.get("user")
            ]
            ids = [s["id"] for s in mine]
            steps = [
                f"open {screen['name']}"
                for screen in self.screens
                if set(screen.get("stories", [])) & set(ids)
            ]
            journeys.append(
                {
                    "id": f"J{index}",
                    "persona": persona["name"],
                    "goal": (persona.get("goals") or ["get the job done"])[0],
                    "steps": [*steps, "see the result confirmed"],
                    "stories": ids,
                }
            )
        return journeys

    # architect -------------------------------------------------------------------------------

    @cached_property
    def stack(self) -> dict[str, Any]:
        found = self.find("technology_stack", "tech_stack")
        if isinstance(found, dict):
            return found
        stack: dict[str, Any] = {
            "frontend": "TypeScript + React",
            "backend": "Python 3.12 + FastAPI",
            "database": "PostgreSQL 16",
            "infrastructure": "managed container platform",
            "testing": "pytest, Playwright",
        }
        if not self.has_frontend:
            del stack["frontend"]
            stack["testing"] = "pytest, contract tests against the OpenAPI document"
        if not self.has_backend:
            # a UI project talks to an API it does not own
            for key in ("backend", "database"):
                del stack[key]
            stack["api_client"] = "typed HTTP client generated from the existing API's OpenAPI"
        rationale = []
        for constraint in self.constraints:
            choice = STACK_BY_AREA.get(constraint["area"])
            if choice and (self.has_frontend or choice[0] not in ("frontend", "ui_kit")):
                stack[choice[0]] = choice[1]
                rationale.append(
                    {
                        "choice": choice[0],
                        "because": constraint["id"],
                        "constraint": constraint["constraint"],
                    }
                )
        if self.mobile_first and self.has_frontend:
            stack["frontend"] = STACK_BY_AREA["platform"][1]
            rationale.append({"choice": "frontend", "because": "mobile-first UI spec"})
        stack["rationale"] = rationale
        return stack

    @cached_property
    def found_apis(self) -> list[Any]:
        return _items(
            self.find(
                "api_specifications", "api_specs", "endpoints", nested=["api_specifications"]
            ),
            "api_specifications",
            "endpoints",
        )

    @cached_property
    def apis(self) -> list[dict[str, Any]]:
        if self.found_apis:
            return [
                _api_item(item, index)
                for index, item in enumerate(self.found_apis[:MAX_ITEMS], start=1)
            ]
        apis = []
        for index, requirement in enumerate(self.functional, start=1):
            basis = self.want_of(requirement)
            verb = _key_words(basis)[0]
            apis.append(
                {
                    "id": f"API-{index}",
                    "method": "GET" if verb in READ_VERBS else "POST",
                    "path": f"/api/v1/{_slug(basis)}",
                    "summary": requirement["statement"],
                    "requirement": requirement["id"],
                    "stories": list(requirement.get("stories", [])),
                }
            )
        return apis

    @cached_property
    def architecture(self) -> dict[str, Any]:
        components = []
        if self.has_frontend:
            components.append(
                {
                    "name": "web-frontend",
                    "responsibility": "renders the screens",
                    "serves_screens": [s["id"] for s in self.screens],
                }
            )
        if self.has_backend:
            components.append(
                {
                    "name": "api",
                    "responsibility": "authenticates and routes HTTP requests",
                    "serves_endpoints": [a["id"] for a in self.apis],
                }
            )
            for api in self.apis:
                components.append(
                    {
                        "name": f"{_slug(api['path'].rsplit('/', 1)[-1])}-module",
                        "responsibility": api["summary"],
                        "requirements": [api["requirement"]],
                    }
                )
        else:
            components.append(
                {
                    "name": "api-client",
                    "responsibility": "calls the existing API the screens need",
                    "uses_endpoints": [a["id"] for a in self.apis],
                }
            )
        style = {
            "service": "service behind one versioned HTTP API, no user interface",
            "ui": "front-end application over an existing API",
        }.get(self.project_kind, "modular monolith behind one HTTP API")
        if self.stage == "brownfield":
            style = f"enhancement of the existing system: {style}"
        return {
            "project": self.project,
            "style": style,
            "components": components[: MAX_ITEMS + 2],
            "data_stores": (
                [self.stack.get("database", "PostgreSQL")]
                + ([self.stack["cache"]] if "cache" in self.stack else [])
            )
            if self.has_backend
            else [],
            "quality_attributes": [
                {
                    "requirement": n["id"],
                    "category": n.get("category", ""),
                    "tactic": TACTICS.get(str(n.get("category")), "measured in CI"),
                }
                for n in self.non_functional
            ],
        }

    # developer -------------------------------------------------------------------------------

    @cached_property
    def found_files(self) -> list[Any]:
        return _items(
            self.find("implementation_files", "files", "code", nested=["implementation_files"]),
            "implementation_files",
            "files",
        )

    @cached_property
    def files(self) -> list[dict[str, Any]]:
        if self.found_files:
            return [
                _file_item(item, index)
                for index, item in enumerate(self.found_files[:MAX_FILES], start=1)
            ]
        files = []
        for api in self.apis if self.has_backend else []:
            name = _slug(api["path"].rsplit("/", 1)[-1]).replace("-", "_")
            ids = [api["requirement"], *api.get("stories", [])]
            files.append(
                {
                    "path": f"backend/app/routes/{name}.py",
                    "purpose": f"{api['method']} {api['path']}",
                    "implements": ids,
                }
            )
            files.append(
                {
                    "path": f"tests/api/test_{name}.py",
                    "purpose": f"tests for {api['method']} {api['path']}",
                    "implements": ids,
                }
            )
        for screen in self.screens if self.has_frontend else []:
            files.append(
                {
                    "path": f"frontend/src/screens/{_pascal(screen['name'])}.tsx",
                    "purpose": f"screen {screen['id']}: {screen['name']}",
                    "implements": [*screen.get("requirements", []), *screen.get("stories", [])],
                }
            )
        return files[:MAX_FILES]

    # qa --------------------------------------------------------------------------------------

    @cached_property
    def test_cases(self) -> list[dict[str, Any]]:
        cases: list[dict[str, Any]] = []
        for story in self.stories:
            for rank, criterion in enumerate(story["acceptance_criteria"]):
                cases.append(
                    {
                        "id": f"T-{len(cases) + 1}",
                        "story": story["id"],
                        "criterion": criterion,
                        "level": "e2e" if rank == 0 else "api",
                    }
                )
        return cases[:MAX_FILES]

    @cached_property
    def test_results(self) -> dict[str, Any]:
        # only files that were really handed over count as an implementation to test
        implemented = {
            i for f in self.found_files if isinstance(f, dict) for i in _items(f.get("implements"))
        }
        traced = {s: r["id"] for r in self.functional for s in r.get("stories", [])}
        results = []
        for case in self.test_cases:
            if not self.found_files:
                status = "not_run"
            elif case["story"] in implemented or traced.get(case["story"]) in implemented:
                status = "passed"
            else:
                status = "failed"
            results.append({"id": case["id"], "story": case["story"], "status": status})
        counts = {
            s: sum(1 for r in results if r["status"] == s) for s in ("passed", "failed", "not_run")
        }
        return {"summary": counts, "cases": results}

    # po / sm ---------------------------------------------------------------------------------

    @cached_property
    def shards(self) -> list[dict[str, Any]]:
        found = _items(
            self.find("sharded_docs", "shards", "epics", nested=["sharded_docs"]),
            "sharded_docs",
            "shards",
        )
        if found and all(isinstance(item, dict) for item in found):
            return found[:MAX_ITEMS]
        epics: dict[str, list[dict[str, Any]]] = {}
        for story in self.stories:
            epics.setdefault(story["as_a"], []).append(story)
        traced = {s: r["id"] for r in self.functional for s in r.get("stories", [])}
        shards = []
        for index, (user, stories) in enumerate(epics.items(), start=1):
            shards.append(
                {
                    "id": f"epic-{index}",
                    "title": f"Epic {index}: what a {user} needs",
                    "stories": [
                        {
                            k: s[k]
                            for k in ("id", "as_a", "i_want", "so_that", "acceptance_criteria")
                        }
                        for s in stories
                    ],
                    "requirements": [traced[s["id"]] for s in stories if s["id"] in traced],
                    "sources": sorted(self.inputs),
                }
            )
        return shards

    @cached_property
    def next_story(self) -> dict[str, Any]:
        # a story cycle run once per epic (for_each) is given its epic as `item`
        item = self.inputs.get("item")
        shard = (
            item
            if isinstance(item, dict) and "stories" in item
            else (self.shards[0] if self.shards else {})
        )
        stories = [
            _story_item(s, i, self.project)
            for i, s in enumerate(_items(shard.get("stories")), start=1)
        ]
        story = (stories or self.stories)[0]
        epic_number = re.findall(r"\d+", str(shard.get("id", "1"))) or ["1"]
        apis = [a for a in self.apis if story["id"] in a.get("stories", [])] or self.apis[:1]
        return {
            **story,
            "key": f"{epic_number[0]}.1",
            "title": f"Story {epic_number[0]}.1: {story['i_want']}",
            "epic": str(shard.get("title", "")),
            "status": "draft",
            "tasks": [
                *[f"implement {a['method']} {a['path']}" for a in apis],
                f"build the screen where a {story['as_a']} can {story['i_want']}",
                "write one test per acceptance criterion",
            ],
        }


def _search(values: list[Any], name: str, depth: int = 3) -> Any:
    level = values
    for _ in range(depth):
        deeper: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and normalise(key) == name:
                        return child
                deeper.extend(item.values())
            elif isinstance(item, list):
                deeper.extend(item[:MAX_FILES])
        level = deeper
    return None


def _need(value: Any, project: str) -> dict[str, str]:
    if isinstance(value, dict):
        want = _text(value.get("want") or value.get("i_want") or summary(value))
        return {"want": want, "so_that": _text(value.get("so_that") or f"{project} helps me")}
    return {"want": _text(value), "so_that": f"{project} helps me"}


def _criteria(user: str, want: str, project: str) -> list[str]:
    return [
        f"Given I am a {user}, when I {want}, then {project} confirms it within 2 seconds",
        f"Given a mistake in what I entered, when I try to {want}, then I see what to fix "
        f"and lose nothing",
        f"Given I use only the keyboard, when I {want}, then every step is reachable",
    ]


def _area_of(text: str) -> str:
    words = set(_words(text))
    for area, keywords in (
        ("security", {"encrypt", "encrypts", "auth", "secure", "gdpr"}),
        ("performance", {"ms", "latency", "fast", "respond", "answers"}),
        ("platform", {"browser", "browsers", "mobile", "ios", "android"}),
        ("integration", {"api", "webhook", "integrate"}),
        ("availability", {"uptime", "available", "availability"}),
    ):
        if words & keywords:
            return area
    return "general"


def _story_item(item: Any, index: int, project: str) -> dict[str, Any]:
    data = item if isinstance(item, dict) else {"i_want": _text(item)}
    want = _text(data.get("i_want") or data.get("want") or data.get("title") or summary(data))
    as_a = _text(data.get("as_a") or data.get("user") or "user", 80)
    criteria = _str_list(data.get("acceptance_criteria")) or _criteria(as_a, want, project)
    story = {
        "id": str(data.get("id") or f"US-{index}"),
        "as_a": as_a,
        "i_want": want,
        "so_that": _text(data.get("so_that") or f"{project} serves me better"),
        "acceptance_criteria": criteria[:4],
    }
    for key in ("persona", "user", "priority"):
        if isinstance(data.get(key), str):
            story[key] = data[key]
    return story


def _persona_item(item: Any, index: int) -> dict[str, Any]:
    data = item if isinstance(item, dict) else {"name": _text(item, 80)}
    return {
        "id": str(data.get("id") or f"P{index}"),
        "name": _text(data.get("name") or summary(data), 80),
        "user": str(data.get("user") or ""),
        "goals": _str_list(data.get("goals"))[:3],
        "frustrations": _str_list(data.get("frustrations"))[:3],
    }


def _requirement_item(item: Any, index: int, prefix: str) -> dict[str, Any]:
    data = item if isinstance(item, dict) else {"statement": _text(item)}
    result: dict[str, Any] = {
        "id": str(data.get("id") or f"{prefix}-{index}"),
        "statement": _text(data.get("statement") or data.get("text") or summary(data)),
    }
    if prefix == "FR":
        if data.get("capability"):
            result["capability"] = _text(data["capability"])
        result["stories"] = [str(s) for s in _items(data.get("stories"))]
    else:
        result["category"] = str(data.get("category") or _area_of(result["statement"]))
        if data.get("source"):
            result["source"] = str(data["source"])
    return result


def _screen_item(item: Any, index: int) -> dict[str, Any]:
    data = item if isinstance(item, dict) else {"name": _text(item, 60)}
    name = _text(data.get("name") or data.get("title") or f"Screen {index}", 60)
    return {
        "id": str(data.get("id") or f"S{index}"),
        "name": name,
        "purpose": _text(data.get("purpose") or name),
        "requirements": [str(r) for r in _items(data.get("requirements"))],
        "stories": [str(s) for s in _items(data.get("stories"))],
        "components": [str(c) for c in _items(data.get("components"))] or _components_for(name),
    }


def _api_item(item: Any, index: int) -> dict[str, Any]:
    data = item if isinstance(item, dict) else {"summary": _text(item)}
    text = _text(data.get("summary") or data.get("path") or summary(data))
    return {
        "id": str(data.get("id") or f"API-{index}"),
        "method": str(data.get("method") or "POST").upper(),
        "path": str(data.get("path") or f"/api/v1/{_slug(text)}"),
        "summary": text,
        "requirement": str(data.get("requirement") or ""),
        "stories": [str(s) for s in _items(data.get("stories"))],
    }


def _file_item(item: Any, index: int) -> dict[str, Any]:
    data = item if isinstance(item, dict) else {"path": _text(item, 120)}
    return {
        "path": _text(data.get("path") or data.get("name") or f"file_{index}", 120),
        "purpose": _text(data.get("purpose") or ""),
        "implements": [str(i) for i in _items(data.get("implements"))],
    }


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _components_for(text: str) -> list[str]:
    verb = _key_words(text)[0]
    if verb in READ_VERBS:
        return ["PageHeader", "FilterBar", "ResultList"]
    return ["PageHeader", "EditForm", "SubmitButton", "StatusToast"]


# --- documents --------------------------------------------------------------------------------


def _doc(
    facts: Facts, title: str, body: dict[str, Any], sections: Sequence[tuple[str, Sequence[str]]]
) -> dict[str, Any]:
    document = {
        "title": title,
        "project": facts.project,
        "author_role": facts.role,
        "agent": facts.agent.id,
        "format": "markdown",
        **body,
        "based_on": list(facts.inputs),
        "digest": digest(facts.inputs),
    }
    if facts.missing:
        document["missing_inputs"] = facts.missing
    context: list[str] = []
    if facts.workflow_name:
        context.append(
            f"BMAD workflow: {facts.workflow_name} ({facts.stage}, {facts.project_kind} project)"
        )
    if facts.brief:
        context.append(f"Brief as given: {_text(facts.brief, 400)}")
    extra = [("Context", context)] if context else []
    # the reader sees what this document was written from, quoted
    extra.append(("Sources", [f"{key}: {text}" for key, text in facts.sources] or ["(no inputs)"]))
    document["markdown"] = _markdown(title, [*sections, *extra])
    return document


def quote(value: Any) -> str:
    """A document's title and first lines, or a value's summary: what a reader needs to see
    which upstream version a document was written from."""
    if isinstance(value, dict) and isinstance(value.get("markdown"), str):
        lines = [line.strip("# ").strip() for line in value["markdown"].splitlines()]
        body = [line for line in lines[1:] if line and not line.startswith("---")]
        head = lines[0] if lines else _text(value.get("title") or "")
        return _text(f'{head}: "{" / ".join(body[:3])}"' if body else head, 240)
    if isinstance(value, str):
        return _text(f'"{value}"', 240)
    return summary(value)


def project_brief(f: Facts) -> dict[str, Any]:
    problem = (
        f"{', '.join(u['name'] for u in f.users)} cannot yet "
        f"{f.users[0]['needs'][0]['want']} with {f.project}."
    )
    if f.brief:
        problem = f"{_text(f.brief, 300)} Today, {problem[0].lower()}{problem[1:]}"
    title = (
        "Project brief"
        if f.stage == "greenfield"
        else "Project brief (enhancement of an existing system)"
    )
    return _doc(
        f,
        f"{title}: {f.project}",
        {
            "problem": problem,
            "brief": f.brief,
            "goals": [need["want"] for user in f.users for need in user["needs"]][:MAX_ITEMS],
            "target_users": f.users,
            "technical_constraints": f.constraints,
        },
        [
            ("Problem", [problem]),
            ("Target users", [f"{u['name']}: {u['description']}" for u in f.users]),
            (
                "Technical constraints",
                [f"{c['id']} ({c['area']}): {c['constraint']}" for c in f.constraints],
            ),
        ],
    )


def prd(f: Facts) -> dict[str, Any]:
    return _doc(
        f,
        f"Product requirements: {f.project}",
        {
            "user_personas": f.personas,
            "user_stories": f.stories,
            "functional_requirements": f.functional,
            "non_functional_requirements": f.non_functional,
            "technical_constraints": f.constraints,
        },
        [
            (
                "User personas",
                [f"{p['id']} {p['name']}: wants to {'; '.join(p['goals'])}" for p in f.personas],
            ),
            (
                "User stories",
                [f"{s['id']}: as a {s['as_a']}, I want to {s['i_want']}" for s in f.stories],
            ),
            (
                "Requirements",
                [f"{r['id']}: {r['statement']}" for r in [*f.functional, *f.non_functional]],
            ),
        ],
    )


def requirements(f: Facts) -> dict[str, Any]:
    return {
        "functional": f.functional,
        "non_functional": f.non_functional,
        "traceability": {r["id"]: r.get("stories", []) for r in f.functional},
    }


def front_end_spec(f: Facts) -> dict[str, Any]:
    return _doc(
        f,
        f"Front-end specification: {f.project}",
        {
            "ui_spec": f.ui_spec,
            "user_journeys": f.journeys,
            "component_specifications": f.components,
        },
        [
            (
                "Screens",
                [f"{s['id']} {s['name']}: stories {', '.join(s['stories'])}" for s in f.screens],
            ),
            ("Components", [c["name"] for c in f.components]),
        ],
    )


def v0_prompt(f: Facts) -> dict[str, Any]:
    """BMAD's AI front-end prompt (for v0, Lovable and the like), written from the UI spec."""
    screens = "; ".join(f"{s['name']} ({', '.join(s['components'])})" for s in f.screens)
    prompt = _text(
        f"Generate a {f.ui_spec['platform']} React UI for {f.project} with these "
        f"screens: {screens}. Principles: "
        f"{'; '.join(f.ui_spec['design_principles'])}.",
        1500,
    )
    return {
        **_doc(
            f,
            f"AI front-end prompt: {f.project}",
            {"prompt": prompt},
            [
                ("Prompt (paste into v0 or Lovable)", [prompt]),
                ("Screens", [f"{s['id']} {s['name']}: {s['purpose']}" for s in f.screens]),
            ],
        ),
        "filename": "ai-frontend-prompt.md",
    }


ARCHITECTURE_TITLES = {
    "fullstack": "Full-stack architecture",
    "service": "Service architecture",
    "ui": "Front-end architecture",
}


def architecture_doc(f: Facts) -> dict[str, Any]:
    title = ARCHITECTURE_TITLES.get(f.project_kind, "Architecture")
    if f.stage == "brownfield":
        title = f"Brownfield {title[0].lower()}{title[1:]}"
    return _doc(
        f,
        f"{title}: {f.project}",
        {
            "system_architecture": f.architecture,
            "technology_stack": f.stack,
            "api_specifications": f.apis,
        },
        [
            ("Technology stack", [f"{k}: {v}" for k, v in f.stack.items() if k != "rationale"]),
            (
                "Components",
                [f"{c['name']}: {c['responsibility']}" for c in f.architecture["components"]],
            ),
            ("API", [f"{a['method']} {a['path']} ({a['requirement']})" for a in f.apis]),
        ],
    )


def implementation_plan(f: Facts) -> list[dict[str, Any]]:
    return [
        {
            "step": index,
            "task": f"create {file['path']}",
            "purpose": file["purpose"],
            "implements": file["implements"],
        }
        for index, file in enumerate(f.files, start=1)
    ]


def code(f: Facts) -> dict[str, str]:
    return {
        file["path"]: f"# {file['purpose']}\n# implements: {', '.join(file['implements'])}\n"
        for file in f.files[:8]
    }


def reviewed_files(f: Facts) -> list[dict[str, Any]]:
    tested = {i for file in f.files if "test" in file["path"] for i in file["implements"]}
    return [
        {
            **file,
            "reviewed_by": f.agent.id,
            "review": "approved"
            if "test" in file["path"] or set(file["implements"]) & tested
            else "needs tests",
        }
        for file in f.files
    ]


def implementation_plan_doc(f: Facts) -> dict[str, Any]:
    steps = implementation_plan(f)
    return _doc(
        f,
        f"Implementation plan: {f.project}",
        {"steps": steps},
        [
            (
                "Steps",
                [
                    f"{s['step']}. {s['task']}: {s['purpose']} "
                    f"(implements {', '.join(map(str, s['implements'])) or 'nothing yet'})"
                    for s in steps
                ]
                or ["(no files in the inputs)"],
            )
        ],
    )


def qa_report(f: Facts) -> dict[str, Any]:
    results = f.test_results
    failed = [r for r in results["cases"] if r["status"] == "failed"]
    verdict = (
        "not tested: no implementation in the inputs"
        if not f.found_files
        else "changes requested"
        if failed
        else "pass"
    )
    return _doc(
        f,
        f"QA report: {f.project}",
        {
            "verdict": verdict,
            "summary": results["summary"],
            "findings": [f"{r['id']} ({r['story']}) failed: story not implemented" for r in failed],
        },
        [("Summary", [f"{k}: {v}" for k, v in results["summary"].items()]), ("Verdict", [verdict])],
    )


def validation_report(f: Facts) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool | None, detail: str) -> None:
        checks.append(
            {
                "check": name,
                "result": "skipped" if ok is None else "pass" if ok else "fail",
                "detail": detail,
            }
        )

    found = f.found_stories
    no_criteria = [s["id"] for s in found if not s["acceptance_criteria"]]
    check(
        "every story has acceptance criteria",
        None if not found else not no_criteria,
        f"stories without criteria: {no_criteria}" if found else "no stories in the inputs",
    )
    traced = {s for r in f.found_functional for s in r.get("stories", [])}
    untraced = [s["id"] for s in found if s["id"] not in traced]
    check(
        "every story traces to a functional requirement",
        None if not (found and f.found_functional) else not untraced,
        f"untraced: {untraced}"
        if found and f.found_functional
        else "stories or requirements missing from the inputs",
    )
    served = {a.get("requirement") for a in f.found_apis if isinstance(a, dict)}
    unserved = [r["id"] for r in f.found_functional if r["id"] not in served]
    check(
        "every functional requirement is served by the API",
        None if not (f.found_apis and f.found_functional) else not unserved,
        f"unserved: {unserved}"
        if f.found_apis and f.found_functional
        else "API or requirements missing from the inputs",
    )
    check("every blocking input was available", not f.missing, f"missing: {f.missing}")
    verdict = "changes requested" if any(c["result"] == "fail" for c in checks) else "approved"
    return _doc(
        f,
        f"Validation report: {f.project}",
        {
            "verdict": verdict,
            "validates": list(f.agent.validates),
            "checks": checks,
        },
        [("Checks", [f"{c['result']}: {c['check']}" for c in checks]), ("Verdict", [verdict])],
    )


def story_doc(f: Facts) -> dict[str, Any]:
    s = f.next_story
    return _doc(
        f,
        s["title"],
        {k: v for k, v in s.items() if k != "title"},
        [
            ("Story", [f"As a {s['as_a']}, I want to {s['i_want']}, so that {s['so_that']}"]),
            ("Acceptance criteria", s["acceptance_criteria"]),
            ("Tasks", s["tasks"]),
        ],
    )


def outputs_summary(f: Facts, key: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """A shared key the role has no generator for: what this agent produced, in short."""
    return {
        "title": key.replace("_", " ").capitalize(),
        "project": f.project,
        "author_role": f.role,
        "agent": f.agent.id,
        "outputs": {name: summary(value) for name, value in outputs.items()},
        "digest": digest(outputs),
    }


def generic_document(f: Facts, name: str) -> dict[str, Any]:
    """An output the role does not know: a document built from the inputs it read."""
    title = normalise(name).replace("_", " ").capitalize()
    body: dict[str, Any] = {
        "output": name,
        "sections": [
            {"heading": key, "summary": summary(value)} for key, value in f.inputs.items()
        ][:MAX_FILES],
    }
    for key in ("notes", "action"):
        if isinstance(f.agent.settings.get(key), str):
            body[key] = f.agent.settings[key]
    if f.agent.description:
        body["description"] = f.agent.description
    lines = [f"{s['heading']}: {s['summary']}" for s in body["sections"]] or ["(no inputs)"]
    return _doc(f, f"{title}: {f.project}", body, [("Based on", lines)])


Generator = Callable[[Facts], Any]

ROLES: dict[str, dict[str, Generator]] = {
    "analyst": {
        "target_users": lambda f: f.users,
        "technical_constraints": lambda f: f.constraints,
        "project_brief": project_brief,
        "brief": project_brief,
        "problem_analysis": lambda f: {
            "project": f.project,
            "problem": project_brief(f)["problem"],
            "affected_users": [u["id"] for u in f.users],
        },
        "user_research": lambda f: {"project": f.project, "users": f.users},
        "project_metadata": lambda f: {
            "project": f.project,
            "author": f.agent.id,
            "users": len(f.users),
            "constraints": len(f.constraints),
        },
    },
    "pm": {
        "user_stories": lambda f: f.stories,
        "stories": lambda f: f.stories,
        "user_personas": lambda f: f.personas,
        "personas": lambda f: f.personas,
        "functional_requirements": lambda f: f.functional,
        "non_functional_requirements": lambda f: f.non_functional,
        "requirements": requirements,
        "acceptance_criteria": lambda f: {s["id"]: s["acceptance_criteria"] for s in f.stories},
        "prd": prd,
        # the PRD's epics as a list: what a BMAD story cycle fans out over
        "epics": lambda f: f.shards,
    },
    "ux_expert": {
        "ui_spec": lambda f: f.ui_spec,
        "ui_specifications": lambda f: f.ui_spec,
        "user_journeys": lambda f: f.journeys,
        "component_specifications": lambda f: f.components,
        "design_system": lambda f: {
            "principles": f.ui_spec["design_principles"],
            "components": [c["name"] for c in f.components],
        },
        "front_end_spec": front_end_spec,
        "ui_ux_spec": front_end_spec,
        "v0_prompt": v0_prompt,
    },
    "architect": {
        "system_architecture": lambda f: f.architecture,
        "system_design": lambda f: f.architecture,
        "technical_architecture": lambda f: f.architecture,
        "technology_stack": lambda f: f.stack,
        "tech_stack": lambda f: f.stack,
        "api_specifications": lambda f: f.apis,
        "api_specs": lambda f: f.apis,
        "fullstack_architecture": architecture_doc,
        "architecture": architecture_doc,
    },
    "developer": {
        "implementation_files": lambda f: f.files,
        "files": lambda f: f.files,
        "implementation_plan": implementation_plan,
        "code": code,
        "source_code": code,
    },
    "qa": {
        "test_plan": lambda f: f.test_cases,
        "test_cases": lambda f: f.test_cases,
        "test_results": lambda f: f.test_results,
        "qa_report": qa_report,
        "test_report": qa_report,
        "review": qa_report,
        "implementation_files": reviewed_files,
    },
    "po": {
        "validation_report": validation_report,
        "checklist_results": validation_report,
        "sharded_docs": lambda f: f.shards,
        "epics": lambda f: f.shards,
    },
    "sm": {
        "story": story_doc,
        "next_story": story_doc,
        "stories": lambda f: [{k: s[k] for k in ("id", "as_a", "i_want")} for s in f.stories],
    },
}


# BMAD steps (imported workflows: the agent's settings carry bmad_step) create files, not
# documents, for dev and qa; those agents also hand back their role's document under this extra
# output (committed like any other, written to --output-dir as docs/<filename>), so a BMAD run's
# output folder holds the whole set: brief, PRD, front-end spec, architecture, implementation
# plan, QA report
COMPANIONS: dict[str, tuple[str, str, Generator]] = {
    "developer": ("implementation_plan.md", "implementation-plan.md", implementation_plan_doc),
    "qa": ("qa_report.md", "qa-report.md", qa_report),
}


@dataclass
class RoleOutput:
    outputs: dict[str, Any] = field(default_factory=dict)
    writes: dict[str, Any] = field(default_factory=dict)


def generate(
    agent: CompiledAgent, inputs: Mapping[str, Any], missing_inputs: Sequence[str] = ()
) -> RoleOutput:
    """Every declared output and shared key of a built-in role agent, from its input snapshot.

    Raises KeyError for a role that is not built in.
    """
    facts = Facts(agent, inputs, missing_inputs)
    table = ROLES[facts.role]

    def make(name: str) -> Any:
        generator = table.get(normalise(name))
        value = generator(facts) if generator else generic_document(facts, name)
        if name.lower().endswith(".md") and not (isinstance(value, dict) and "markdown" in value):
            # a document was asked for: wrap the structured value
            value = _doc(
                facts,
                normalise(name).replace("_", " ").capitalize(),
                {"content": value},
                [("Content", [summary(value)])],
            )
        if name.lower().endswith(".md") and isinstance(value, dict) and "filename" not in value:
            # BMAD names its documents by artifact: prd.md lands in docs/prd.md
            value = {**value, "filename": f"docs/{name}"}
        return fit(value)

    outputs = {name: make(name) for name in agent.outputs}
    companion = COMPANIONS.get(facts.role)
    if (
        companion is not None
        and "bmad_step" in agent.settings
        and not any(name.lower().endswith(".md") for name in agent.outputs)
    ):
        name, filename, document = companion
        outputs[name] = fit({**document(facts), "filename": filename})
    writes = {}
    for key in agent.writes:
        if normalise(key) in table:
            writes[key] = make(key)
        else:
            writes[key] = fit(outputs_summary(facts, key, outputs))
    return RoleOutput(outputs=outputs, writes=writes)
