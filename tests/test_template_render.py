"""BMAD v4 template rendering (pee.activities.template_render) on a BMAD-shaped fixture:
plain-English conditions, repeatables with and without a list, inline `items:`, variables
and elicit prompts, all listed at the end of the document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pee.activities.template_render import decide, render_bmad, variables

TEMPLATE = yaml.safe_load(
    (Path(__file__).parent / "bmad" / "core" / "templates" / "prd-tmpl.yaml").read_text()
)
EPICS = [
    {
        "epic_number": 1,
        "epic_title": "Sign-up",
        "stories": [
            {
                "epic_number": 1,
                "story_number": 1,
                "story_title": "Form",
                "user_type": "visitor",
                "action": "an account",
            }
        ],
    },
    {"epic_number": 2, "epic_title": "Billing"},
]


def render(**inputs: Any) -> dict[str, Any]:
    return render_bmad(TEMPLATE, variables(inputs))


def test_project_name_fills_the_title_and_the_text() -> None:
    """{{project_name}} reaches the title, a paragraph and an inline item."""
    markdown = render(project_name="Acme")["markdown"]
    assert markdown.startswith("# Acme Product Requirements Document (PRD)\n")
    assert "Acme exists because ." in markdown
    assert "- Read the brief of Acme\n" in markdown


def test_project_name_also_comes_from_an_upstream_document() -> None:
    """Without a project_name input, an upstream document's `project` fills it."""
    document = render(**{"analyst.brief": {"markdown": "# Brief", "project": "Zeta"}})
    assert document["title"] == "Zeta Product Requirements Document (PRD)"
    assert "project_name" not in document["missing"]


def test_inline_items_render_as_a_list_without_lone_colons() -> None:
    """Text items, {label: text} items and {label: nothing} items."""
    markdown = render(project_name="Acme")["markdown"]
    assert (
        "## Before You Start\n\n- Read the brief of Acme\n- **Problem**: what hurts today\n"
        "- **Scope**\n"
    ) in markdown
    assert "\n:\n" not in markdown and "- :" not in markdown


def test_undecided_plain_english_conditions_keep_the_section_and_state_it() -> None:
    document = render(project_name="Acme")
    markdown = document["markdown"]
    assert (
        "## User Interface Design Goals\n\n> Applies if: PRD has UX/UI requirements\n" in markdown
    )
    assert "## Next Steps\n\n> Applies if: Enhancement includes UI changes\n" in markdown
    assert [
        "ui-goals: PRD has UX/UI requirements (--set prd_has_ux_ui_requirements=yes|no)",
        "next-steps: Enhancement includes UI changes "
        "(--set enhancement_includes_ui_changes=yes|no)",
    ] == document["conditions"]
    assert "Sections kept with their condition stated (decide with --set):" in markdown


def test_set_values_decide_plain_english_conditions() -> None:
    """`no` drops a section (recorded as skipped), `y` keeps it without a note."""
    document = render(
        project_name="Acme", prd_has_ux_ui_requirements="no", enhancement_includes_ui_changes="y"
    )
    markdown = document["markdown"]
    assert "User Interface Design Goals" not in markdown
    assert "## Next Steps\n\nHand the PRD to the UX expert." in markdown
    assert "Applies if" not in markdown
    assert ["ui-goals: condition 'PRD has UX/UI requirements' is false"] == document["skipped"]
    assert [] == document["conditions"]


def test_condition_spellings() -> None:
    """true/yes/y/1/on are true, false/no/n/0/off false; `not` inverts; unknown is None."""
    for word in ("true", "yes", "y", "1", "on", "Y"):
        assert decide("Has UI", {"has_ui": word}) is True
    for word in ("false", "no", "n", "0", "off"):
        assert decide("Has UI", {"has_ui": word}) is False
    assert decide("not Has UI", {"has_ui": "no"}) is True
    assert decide("Has UI", {}) is None


def test_a_repeatable_section_renders_once_per_item() -> None:
    """Two epics: two sections; the first epic's story list renders its story; the second epic
    has no stories, so its story section is one stub that says so."""
    document = render(project_name="Acme", **{"pm.epics": EPICS})
    markdown = document["markdown"]
    assert "## Epic 1 Sign-up\n\n### Story 1.1 Form\n\nAs a visitor, I want an account." in (
        markdown
    )
    assert "## Epic 2 Billing\n\n### Story 2.[story_number] [story_title]\n\n> Stub:" in markdown
    assert ["epic-details[2].story: no list 'stories' was given; rendered once as a stub"] == (
        document["stubs"]
    )


def test_a_repeatable_section_without_a_list_is_one_stub() -> None:
    markdown = render(project_name="Acme")["markdown"]
    assert (
        "## Epic [epic_number] [epic_title]\n\n> Stub: repeat this section once per item "
        "of 'epics' (no such list was given)"
    ) in markdown
    assert markdown.count("## Epic ") == 1


def test_notes_list_empty_variables_and_elicit_prompts() -> None:
    """The document ends with its notes; the same lists are in the result."""
    document = render(project_name="Acme", **{"pm.epics": EPICS})
    assert [
        "goals",
        "problem_statement",
        "target_platforms",
        "story_number",
        "story_title",
        "user_type",
        "action",
        "requirement",
        "description",
        "api_compatibility",
        "other_docs",
    ] == document["missing"]
    assert [
        {
            "section": "goals-context",
            "title": "Goals and Background Context",
            "instruction": "Ask whether a Project Brief exists; draft the goals from it.",
        }
    ] == document["elicit"]
    notes = document["markdown"].split("## Template notes", 1)[1]
    assert "Variables without a value (rendered empty): goals, problem_statement" in notes
    assert (
        "- Goals and Background Context: Ask whether a Project Brief exists; draft the "
        "goals from it."
    ) in notes


def test_an_empty_leaf_section_shows_its_instruction() -> None:
    markdown = render(project_name="Acme")["markdown"]
    assert "### Goals\n\n> To write: One line per desired outcome.\n" in markdown


def test_items_with_their_own_templates_and_notes_to_the_model() -> None:
    """BMAD's `items: [{id, template}]` render their templates (numbering themselves), a
    section template without values leaves no lone ':', and [[LLM: ...]] notes are dropped."""
    markdown = render(project_name="Acme", api_compatibility="v1 API unchanged")["markdown"]
    assert "## Compatibility\n\n- CR1: v1 API unchanged\n- CR2: schemas stay readable\n" in (
        markdown
    )
    assert "## Documentation Found\n\n- [ ] Tech stack notes\n- [ ] Other:\n" in markdown
    assert "[[LLM" not in markdown
    assert "\n:\n" not in markdown
