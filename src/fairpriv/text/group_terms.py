"""The project's own religion and race term lists for counterfactual data augmentation beyond gender.

CDA for gender (:mod:`fairpriv.text.cda`) swaps each gendered word for its one counterpart. Religion and race have
more than two groups, so a term is described by its *group* and its *form* (a slot: the singular person noun, the
plural, the adjective, ...), and a swap replaces it by the same form of another group (the group rule is in
:mod:`fairpriv.text.group_swap`). Each slot holds a tuple of spellings: the first is what a swap *writes* for that
group, the others are only *read* ("Islamic" is read as the adjective of islam; a swap to islam writes "Muslim").

The lists were written for this project from general English usage; no list was copied. Groups follow the BOLD
domains that the ``religion_bias`` / ``race_bias`` tasks evaluate, under BOLD's names as those tasks use them
(swap statistics name the same groups): seven religious ideologies and four US race groups. Words deliberately not swapped are in ``LEFT_OUT`` with the reason (see README.md for the rules).

Spellings are stored in their usual written case ("Jewish", "atheist", "Black", "white"): the swap writes that case
unless the source word was upper-case or capitalised where its own usual form is not (see ``group_swap``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache


ATTRIBUTES = ("gender", "religion", "race")

# group -> slot -> spellings (first = written by a swap, all = read). Every group of an attribute has every slot.
RELIGION_TERMS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "judaism": {"person": ("Jew",), "people": ("Jews",), "adj": ("Jewish",), "faith": ("Judaism",)},
    "christianity": {"person": ("Christian",), "people": ("Christians",), "adj": ("Christian",),
                     "faith": ("Christianity",)},
    "islam": {"person": ("Muslim",), "people": ("Muslims",), "adj": ("Muslim", "Islamic"), "faith": ("Islam",)},
    "hinduism": {"person": ("Hindu",), "people": ("Hindus",), "adj": ("Hindu",), "faith": ("Hinduism",)},
    "buddhism": {"person": ("Buddhist",), "people": ("Buddhists",), "adj": ("Buddhist",), "faith": ("Buddhism",)},
    "sikhism": {"person": ("Sikh",), "people": ("Sikhs",), "adj": ("Sikh",), "faith": ("Sikhism",)},
    "atheism": {"person": ("atheist",), "people": ("atheists",), "adj": ("atheist", "atheistic"),
                "faith": ("atheism",)},
}

# "adj" also serves as the singular noun ("a Black", "an Asian", "a Latino"): every written form works as both.
# "american"/"americans" are two-word terms, matched with a space or a hyphen between the words.
RACE_TERMS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "African_Americans": {"adj": ("Black",), "people": ("Blacks",), "american": ("African American",),
                         "americans": ("African Americans",)},
    "European_Americans": {"adj": ("white", "Caucasian"), "people": ("whites", "Caucasians"),
                          "american": ("European American",), "americans": ("European Americans",)},
    "Asian_Americans": {"adj": ("Asian",), "people": ("Asians",), "american": ("Asian American",),
                       "americans": ("Asian Americans",)},
    "Hispanic_and_Latino_Americans": {"adj": ("Hispanic", "Latino", "Latina", "Latinx"),
                        "people": ("Hispanics", "Latinos", "Latinas"),
                        "american": ("Hispanic American", "Latino American", "Latina American"),
                        "americans": ("Hispanic Americans", "Latino Americans", "Latina Americans")},
}

TERMS: Mapping[str, Mapping[str, Mapping[str, tuple[str, ...]]]] = {"religion": RELIGION_TERMS, "race": RACE_TERMS}

# Words read as race terms only in a racial context (see group_swap.resolve): the colour words, and two adjectives
# that are mostly geographic on their own ("East Asian model", "Asian elephant", "Caucasian languages").
COLOUR_WORDS = frozenset({"black", "white", "blacks", "whites"})
CONTEXT_WORDS = COLOUR_WORDS | frozenset({"asian", "caucasian"})

# A context word directly followed by one of these (one space, no line break) is a race term: "white people",
# "Black voters", "black and white students" (through the coordination rule). Words for people and their groups.
PERSON_NOUNS = frozenset(
    "people person persons man men woman women boy boys girl girls child children kid kids baby babies teen teens "
    "teenager teenagers youth youths adult adults family families parent parents mother mothers father fathers "
    "community communities population populations majority minority american americans voter voters student "
    "students resident residents worker workers citizen citizens neighbor neighbors neighbour neighbours "
    "neighborhood neighborhoods neighbourhood neighbourhoods individual individuals folk folks male males female "
    "females patient patients athlete athletes artist artists musician musicians writer writers author authors "
    "actor actors actress actresses officer officers soldier soldiers farmer farmers friend friends leader "
    "leaders candidate candidates politician politicians lawyer lawyers doctor doctors teacher teachers employee "
    "employees settler settlers immigrant immigrants".split())

LEFT_OUT: Mapping[str, str] = {
    # religion
    "church/synagogue/mosque/temple/gurdwara": "places of worship are not one-to-one across the seven groups "
                                               "(temple is both Hindu and Buddhist; atheism has none), and "
                                               "'church' is often generic ('church and state')",
    "rabbi/priest/imam/pandit/monk/granthi": "clergy have no counterpart for atheism, 'priest' is shared by several "
                                             "groups, and 'monk' is already a gender word (monk/nun)",
    "Catholic/Protestant/Orthodox/Sunni/Shia/Reform": "denominations: a swap would need a matching denomination "
                                                     "in every other group",
    "God/Allah/Christ/Buddha": "deities and founders: swapping them rewrites theology, not a mention of a group",
    "Bible/Quran/Koran/Torah/Vedas": "scriptures: topic words, not group terms",
    "Islamist/Zionist/Jihadist": "political movements, not the religious group",
    "Jewry/Christendom/Muslimah/Jewess": "rare, archaic or gender-marked forms with no counterpart in every group",
    # race
    "African/European": "continents and nationalities on their own; only the two-word group terms are swapped",
    "Native American/Indigenous/Arab/Middle Eastern/Pacific Islander": "groups outside BOLD's four race groups, "
                                                                      "which the race_bias tasks evaluate",
    "people of color/minority": "not specific to one group",
    "Negro/colored and slurs": "historical or offensive terms: not written by a swap, and rewriting them into a "
                               "neutral term would change the record's tone rather than its group",
}


def slot_names(attribute: str) -> tuple[str, ...]:
    groups = TERMS[attribute]
    return tuple(next(iter(groups.values())))


def check_terms(terms: Mapping[str, Mapping[str, tuple[str, ...]]]) -> None:
    """Every group has the same slots, every spelling belongs to one group only, multiword terms have two words,
    and a slot's spellings have the same number of words. ValueError otherwise."""
    first, owner = next(iter(terms.values())), {}
    for group, forms in terms.items():
        if set(forms) != set(first):
            raise ValueError(f"group {group!r} has slots {sorted(forms)}, expected {sorted(first)}")
        for slot, spellings in forms.items():
            if not spellings:
                raise ValueError(f"group {group!r} slot {slot!r} has no spelling")
            model = first[slot][0] if first[slot] else spellings[0]
            for spelling in spellings:
                words = spelling.split()
                if len(words) not in (1, 2) or len(words) != len(model.split()):
                    raise ValueError(f"{spelling!r} ({group}/{slot}) must have as many words (1 or 2) as "
                                     f"{model!r}")
                if owner.setdefault(spelling.lower(), group) != group:
                    raise ValueError(f"{spelling!r} is a term of both {owner[spelling.lower()]!r} and {group!r}")


@lru_cache(maxsize=4)
def term_table(attribute: str) -> dict[str | tuple[str, str], tuple[str, tuple[tuple[str, str], ...]]]:
    """lowercase word (or pair of lowercase words) -> (group, ((slot, spelling as listed), ...)).

    A word can fill several slots of its group ("Christian": person and adj); the swap resolves which."""
    table: dict = {}
    for group, forms in TERMS[attribute].items():
        for slot, spellings in forms.items():
            for spelling in spellings:
                words = tuple(spelling.lower().split())
                key = words[0] if len(words) == 1 else words
                _, slots = table.get(key, (group, ()))
                table[key] = (group, slots + ((slot, spelling),))
    return table


def distinct_terms(attribute: str) -> int:
    """The number of distinct spellings (case-insensitive) an attribute's swap reads."""
    return len(term_table(attribute))


for _terms in TERMS.values():
    check_terms(_terms)
