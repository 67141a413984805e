#!/usr/bin/env python3
"""Generate tiny Hugging Face ``transformers`` ELECTRA fixtures for the Rust tests.

The Rust crate ``electra-model`` loads Hugging Face ELECTRA checkpoints and must
reproduce the reference PyTorch forward pass. This script builds two very small
ELECTRA models with random (but deterministic) weights,

* a discriminator (``ElectraForPreTraining``) and
* a generator (``ElectraForMaskedLM``, output layer tied to its word embeddings),

saves them the way ``save_pretrained`` does (safetensors, plus one legacy
``pytorch_model.bin`` copy of the discriminator), runs them on a fixed padded
two-segment batch and writes the intermediate and final activations to JSON.
The generator shares its embedding block with the discriminator, as in the
released ELECTRA checkpoints. See ``README.md`` in the output folder for the
file layout and tensor shapes.

Usage (from any directory)::

    python3 -m venv /work/venv-fixtures
    /work/venv-fixtures/bin/pip install -r scripts/requirements-fixtures.txt
    /work/venv-fixtures/bin/python scripts/make_hf_fixtures.py \
        [--out crates/electra-model/tests/fixtures/hf-tiny]

``--out`` defaults to ``crates/electra-model/tests/fixtures/hf-tiny`` relative
to the repository root (found from this file's location); a relative ``--out``
is also resolved against the repository root.

The same models also give the reference for the pre-training losses of
``electra-objective`` (``make_objective_fixture``): on the same batch, with
fixed masked positions and fixed "sampled" replacement ids, it records the
generator's MLM loss, the discriminator's replaced-token-detection loss and the
total ``1·MLM + 50·RTD`` in ``--objective-out`` (default
``crates/electra-objective/tests/fixtures/objective-tiny``). That folder holds
only JSON and a README; its test loads the checkpoints from ``--out``.

``make_pair_fixture`` writes a released-style pair for continuing pre-training
(``electra-run``'s ``init_from_hf`` test) to ``--pair-out`` (default
``crates/electra-run/tests/fixtures/hf-pair``): the discriminator, a generator
of half its width whose copy of the shared embedding block is nudged in two
tensors, and the first step's losses on the objective reference's batch and
slots. ``--pair-only`` writes that fixture alone.

The outputs are committed, so CI and ``cargo test`` do not need Python. Rerun
this script only to change or extend the fixtures. The script is deterministic:
it runs on CPU with one thread and a fixed seed, and two runs with the pinned
versions produce byte-identical files. It requires ``transformers`` 4.x,
because 5.x can no longer write ``pytorch_model.bin`` via ``save_pretrained``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

import safetensors
import torch
import transformers
from torch import nn
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("crates/electra-model/tests/fixtures/hf-tiny")
DEFAULT_OBJECTIVE_OUT = Path("crates/electra-objective/tests/fixtures/objective-tiny")
DEFAULT_PAIR_OUT = Path("crates/electra-run/tests/fixtures/hf-pair")

SEED = 20240601

# Standard deviations used by `randomise` (HF's 0.02 init gives near-constant outputs).
WEIGHT_STD = 0.2
BIAS_STD = 0.1
LAYER_NORM_STD = 0.1

# Sub-folders and files this script owns inside the output folder.
DISCRIMINATOR_DIR = "discriminator"
DISCRIMINATOR_BIN_DIR = "discriminator-bin"
GENERATOR_DIR = "generator"
INPUTS_FILE = "inputs.json"
EXPECTED_FILE = "expected.json"
README_FILE = "README.md"

DISCRIMINATOR_CONFIG = dict(
    vocab_size=64,
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=40,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    initializer_range=0.02,
    pad_token_id=0,
)
# Same as the discriminator except for the width (key order is kept).
GENERATOR_CONFIG = dict(DISCRIMINATOR_CONFIG, hidden_size=24, num_attention_heads=2, intermediate_size=40)


# --------------------------------------------------------------------------- models


def build_models() -> tuple[ElectraForPreTraining, ElectraForMaskedLM]:
    """Build the discriminator and generator in float32 eval mode, with randomised weights.

    The generator's embedding block (word, position and token type embeddings
    and the embeddings LayerNorm) is a copy of the discriminator's, and its
    ``generator_lm_head.weight`` stays tied to its word embeddings.
    """
    torch.manual_seed(SEED)  # HF's own init; every parameter is overwritten below anyway.
    discriminator = ElectraForPreTraining(ElectraConfig(**DISCRIMINATOR_CONFIG))
    generator = ElectraForMaskedLM(ElectraConfig(**GENERATOR_CONFIG))

    randomise(discriminator, torch.Generator().manual_seed(SEED))
    randomise(generator, torch.Generator().manual_seed(SEED + 1))

    with torch.no_grad():
        # load_state_dict copies in place, so the lm-head tie is kept.
        generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
    check_tied(generator)

    for model in (discriminator, generator):
        model.to(torch.float32)
        model.eval()
    return discriminator, generator


@torch.no_grad()
def randomise(model: nn.Module, gen: torch.Generator) -> None:
    """Overwrite every parameter of ``model`` in place with O(1)-scale random values.

    Linear and embedding weights ~ N(0, 0.2); biases ~ N(0, 0.1); LayerNorm
    weights = 1 + N(0, 0.1) and LayerNorm biases ~ N(0, 0.1). Modules are
    visited in registration order, so the result depends only on ``gen``.
    Shared (tied) parameters are drawn once: the generator's lm-head weight is
    the word embedding tensor itself and is not visited separately.
    """

    def normal_(param: torch.Tensor, mean: float, std: float) -> None:
        param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * std + mean)

    seen: set[int] = set()
    for _, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            if isinstance(module, nn.LayerNorm):
                normal_(param, 1.0 if name == "weight" else 0.0, LAYER_NORM_STD)
            elif isinstance(module, (nn.Linear, nn.Embedding)) and name == "weight":
                normal_(param, 0.0, WEIGHT_STD)
            elif isinstance(module, nn.Linear) and name == "bias":
                normal_(param, 0.0, BIAS_STD)
            else:
                raise TypeError(f"don't know how to randomise {type(module).__name__}.{name}")

    missing = [name for name, param in model.named_parameters() if id(param) not in seen]
    assert not missing, f"parameters left unrandomised: {missing}"


def check_tied(generator: ElectraForMaskedLM) -> None:
    """Assert that the generator's output layer shares its word embedding tensor."""
    lm_head = generator.generator_lm_head.weight
    word = generator.electra.embeddings.word_embeddings.weight
    assert lm_head is word or lm_head.data_ptr() == word.data_ptr(), "generator_lm_head.weight is not tied"


# --------------------------------------------------------------------------- inputs


def make_inputs() -> dict[str, torch.Tensor]:
    """A fixed batch of 3 sequences of length 10, with padding and two segments.

    Id 2 plays [CLS], id 3 plays [SEP], id 0 is padding; other ids are in 4..63.
    Row 0: two segments, no padding. Row 1: two segments, 3 padding positions.
    Row 2: one segment, 6 padding positions. token_type_ids are 0 on the first
    segment (including [CLS] and its [SEP]), 1 on the second, 0 on padding.
    """
    rows = [
        # (first segment tokens, second segment tokens, padded length)
        ([17, 42, 9, 63], [55, 23, 61], 10),
        ([33, 4], [47, 5], 10),
        ([28, 51], [], 10),
    ]
    input_ids, attention_mask, token_type_ids = [], [], []
    for first, second, length in rows:
        ids = [2, *first, 3]
        types = [0] * len(ids)
        if second:
            ids += [*second, 3]
            types += [1] * (len(second) + 1)
        pad = length - len(ids)
        assert pad >= 0
        input_ids.append(ids + [0] * pad)
        attention_mask.append([1] * len(ids) + [0] * pad)
        token_type_ids.append(types + [0] * pad)
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "attention_mask": torch.tensor(attention_mask, dtype=torch.long),
        "token_type_ids": torch.tensor(token_type_ids, dtype=torch.long),
    }


# --------------------------------------------------------------------------- forward


@torch.no_grad()
def run_model(model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reference activations of an ELECTRA model (``ElectraForPreTraining`` or ``ElectraForMaskedLM``)."""
    embedding_output = model.electra.embeddings(
        input_ids=inputs["input_ids"], token_type_ids=inputs["token_type_ids"]
    )
    base = model.electra(**inputs, output_hidden_states=True)
    out = model(**inputs, output_hidden_states=True)
    hidden_states = torch.stack(out.hidden_states)  # [layers + 1, b, s, H]
    assert torch.equal(hidden_states, torch.stack(base.hidden_states))
    assert torch.equal(base.last_hidden_state, hidden_states[-1])
    return {
        "embedding_output": embedding_output,
        "hidden_states": hidden_states,
        "last_hidden_state": base.last_hidden_state,
        "logits": out.logits,
    }


# --------------------------------------------------------------------------- writing


def format_json(value, indent: int = 0) -> str:
    """Deterministic JSON: sorted keys, lists of scalars on one line, floats as '%.9g'.

    Nine significant digits round-trip every float32 exactly, whether the
    reader parses straight to f32 or to f64 and then casts.
    """
    pad = "  " * indent
    inner = "  " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{inner}{format_json(str(k))}: {format_json(value[k], indent + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return "[" + ", ".join(format_json(v) for v in value) + "]"
        return "[\n" + ",\n".join(inner + format_json(v, indent + 1) for v in value) + "\n" + pad + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        assert math.isfinite(value), value
        return "%.9g" % value
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot format {type(value).__name__}")


def tensor_to_lists(t: torch.Tensor):
    """Nested Python lists; float tensors become Python floats equal to their float32 values."""
    if t.is_floating_point():
        assert t.dtype == torch.float32, t.dtype
        return t.double().tolist()
    return t.tolist()


def write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


def reset_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def write_outputs(
    out: Path,
    discriminator: ElectraForPreTraining,
    generator: ElectraForMaskedLM,
    inputs: dict[str, torch.Tensor],
    expected: dict[str, dict[str, torch.Tensor]],
) -> None:
    """Save both models (safetensors and .bin), inputs.json, expected.json and README.md."""
    out.mkdir(parents=True, exist_ok=True)
    discriminator.save_pretrained(reset_dir(out / DISCRIMINATOR_DIR), safe_serialization=True)
    discriminator.save_pretrained(reset_dir(out / DISCRIMINATOR_BIN_DIR), safe_serialization=False)
    generator.save_pretrained(reset_dir(out / GENERATOR_DIR), safe_serialization=True)

    write_text(out / INPUTS_FILE, format_json({k: tensor_to_lists(v) for k, v in inputs.items()}) + "\n")
    expected_json = {
        model: {key: tensor_to_lists(t) for key, t in acts.items()} for model, acts in expected.items()
    }
    write_text(out / EXPECTED_FILE, format_json(expected_json) + "\n")
    write_text(out / README_FILE, readme_text(inputs, expected))


def readme_text(inputs: dict[str, torch.Tensor], expected: dict[str, dict[str, torch.Tensor]]) -> str:
    def shape(t: torch.Tensor) -> str:
        return "[" + ", ".join(str(d) for d in t.shape) + "]"

    def config_line(cfg: dict) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in cfg.items())

    d, g = expected["discriminator"], expected["generator"]
    b, s = inputs["input_ids"].shape
    lines = [
        "# hf-tiny: tiny Hugging Face ELECTRA fixtures",
        "",
        "Generated by `scripts/make_hf_fixtures.py`; do not edit by hand. To regenerate:",
        "",
        "```sh",
        "pip install -r scripts/requirements-fixtures.txt",
        "python scripts/make_hf_fixtures.py --out crates/electra-model/tests/fixtures/hf-tiny",
        "```",
        "",
        f"- torch {torch.__version__}, transformers {transformers.__version__}, "
        f"safetensors {safetensors.__version__}, Python {sys.version_info.major}.{sys.version_info.minor}",
        f"- seed {SEED} (discriminator weights from `torch.Generator().manual_seed({SEED})`, "
        f"generator weights from seed {SEED + 1})",
        "- CPU, float32, one thread, eval mode (dropout off), `torch.no_grad()`; attention is the eager implementation",
        "",
        "## Models",
        "",
        f"- discriminator: `ElectraForPreTraining(ElectraConfig({config_line(DISCRIMINATOR_CONFIG)}))`",
        f"- generator: `ElectraForMaskedLM(ElectraConfig({config_line(GENERATOR_CONFIG)}))`",
        "",
        "`hidden_act=\"gelu\"` is the exact (erf) GELU; the generator prediction head always uses exact GELU.",
        "Both models have `embedding_size != hidden_size`, so both have `electra.embeddings_project`.",
        "",
        "All parameters are re-randomised after HF's init so that outputs are O(1) and sensitive to mistakes:",
        f"Linear and Embedding weights ~ N(0, {WEIGHT_STD}) (including the padding row 0 of the word embeddings),",
        f"Linear biases ~ N(0, {BIAS_STD}) (including `generator_lm_head.bias`), "
        f"LayerNorm weights = 1 + N(0, {LAYER_NORM_STD}), LayerNorm biases ~ N(0, {LAYER_NORM_STD}).",
        "The generator's `electra.embeddings.*` (word, position and token type embeddings and the",
        "embeddings LayerNorm) are then copied from the discriminator, so both checkpoints share the",
        "embedding block exactly, as the released ELECTRA checkpoints do. The generator's",
        "`generator_lm_head.weight` is tied to (is the same tensor as) `electra.embeddings.word_embeddings.weight`.",
        "",
        "## Files",
        "",
        "- `discriminator/`: `save_pretrained(..., safe_serialization=True)`: `config.json`, `model.safetensors`.",
        "- `discriminator-bin/`: the same discriminator with `safe_serialization=False`: `config.json`,",
        "  `pytorch_model.bin` (torch zip format, entries under `pytorch_model/`: `data.pkl` pickle plus",
        "  raw little-endian storages `data/<n>`; same 43 tensors as `discriminator/model.safetensors`).",
        "- `generator/`: `save_pretrained(..., safe_serialization=True)`: `config.json`, `model.safetensors`.",
        "  HF drops the tied `generator_lm_head.weight` from the safetensors file; loaders must tie it to",
        "  `electra.embeddings.word_embeddings.weight` (`generator_lm_head.bias` is stored).",
        f"- `{INPUTS_FILE}`: `input_ids`, `attention_mask`, `token_type_ids`, each int lists of shape [{b}, {s}].",
        "  Id 2 plays [CLS], 3 plays [SEP], 0 is padding (attention_mask 0, token type 0). Row 0 has two",
        "  segments and no padding, row 1 two segments and 3 padding positions, row 2 one segment and",
        "  6 padding positions. Position ids are the default 0..seq-1.",
        f"- `{EXPECTED_FILE}`: float32 activations written with 9 significant digits (exact float32 round-trip):",
        "  - `discriminator`:",
        f"    - `embedding_output` {shape(d['embedding_output'])} = [b, s, E]: "
        "`model.electra.embeddings(input_ids, token_type_ids)`, before `embeddings_project`",
        f"    - `hidden_states` {shape(d['hidden_states'])} = [layers + 1, b, s, H]: "
        "`output_hidden_states=True`; index 0 is after `embeddings_project`",
        f"    - `last_hidden_state` {shape(d['last_hidden_state'])} = [b, s, H]",
        f"    - `logits` {shape(d['logits'])} = [b, s]: replaced-token-detection logits",
        "  - `generator`:",
        f"    - `embedding_output` {shape(g['embedding_output'])}",
        f"    - `hidden_states` {shape(g['hidden_states'])}",
        f"    - `last_hidden_state` {shape(g['last_hidden_state'])}",
        f"    - `logits` {shape(g['logits'])} = [b, s, vocab]: MLM logits",
        "",
        "Activations are given at every position, padding included. HF adds the float32 minimum to the",
        "attention scores of padded keys; adding -10000 instead gives the same result (zero weight) in float32.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- objective fixture

# Token ids of the tiny vocabulary: 0 pad, 2 [CLS], 3 [SEP] (as in make_inputs); 1 plays [MASK].
OBJECTIVE_SPECIAL_IDS = dict(pad_token_id=0, cls_token_id=2, sep_token_id=3, mask_token_id=1)
GEN_WEIGHT = 1.0
DISC_WEIGHT = 50.0
LOSS_EPS = 1e-6  # the reference's `Σw + 1e-6` denominators (spec 1.5)

# Three prediction slots per row: (position, active, replaced by [MASK] in the generator input,
# sampled id). Inactive slots use position 0, weight 0 and sampled id 0. Chosen to cover: a
# position the generator sees unmasked (the 15 % case) that still gets a replacement, samples
# equal to the original (labelled original), and rows with unused slots and padding.
OBJECTIVE_SLOTS = [
    [(1, True, True, 17), (4, True, False, 30), (7, True, True, 12)],  # 17 = original at 1
    [(2, True, True, 40), (5, True, True, 5), (0, False, False, 0)],  # 5 = original at 5
    [(1, True, True, 9), (0, False, False, 0), (0, False, False, 0)],
]


@torch.no_grad()
def objective_reference(
    discriminator: ElectraForPreTraining, generator: ElectraForMaskedLM, inputs: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The ELECTRA losses of spec 1.3-1.5 on ``inputs`` with the fixed slots of ``OBJECTIVE_SLOTS``."""
    input_ids = inputs["input_ids"]
    attention_mask = inputs["attention_mask"]
    token_type_ids = inputs["token_type_ids"]
    b, s = input_ids.shape
    positions = torch.tensor([[slot[0] for slot in row] for row in OBJECTIVE_SLOTS], dtype=torch.long)
    weights = torch.tensor([[float(slot[1]) for slot in row] for row in OBJECTIVE_SLOTS], dtype=torch.float32)
    sampled = torch.tensor([[slot[3] for slot in row] for row in OBJECTIVE_SLOTS], dtype=torch.long)
    targets = torch.gather(input_ids, 1, positions) * weights.long()

    # Generator input: [MASK] at the active slots marked for masking (spec 1.2 step 6).
    masked_input_ids = input_ids.clone()
    for r, row in enumerate(OBJECTIVE_SLOTS):
        for pos, active, to_mask, _ in row:
            if active and to_mask:
                masked_input_ids[r, pos] = OBJECTIVE_SPECIAL_IDS["mask_token_id"]

    # Generator MLM loss over the active slots of the batch (spec 1.5).
    gen_logits = generator(
        input_ids=masked_input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
    ).logits  # [b, s, V]
    slot_logits = torch.gather(gen_logits, 1, positions.unsqueeze(-1).expand(-1, -1, gen_logits.shape[-1]))
    nll = nn.functional.cross_entropy(slot_logits.reshape(-1, slot_logits.shape[-1]), targets.reshape(-1), reduction="none")
    mlm_loss = (nll * weights.reshape(-1)).sum() / (weights.sum() + LOSS_EPS)

    # Discriminator input: the originals with the samples at every active slot (spec 1.4).
    disc_input_ids = input_ids.clone()
    for r, row in enumerate(OBJECTIVE_SLOTS):
        for pos, active, _, sample in row:
            if active:
                disc_input_ids[r, pos] = sample
    labels = (disc_input_ids != input_ids).long()
    disc_logits = discriminator(
        input_ids=disc_input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
    ).logits  # [b, s]
    bce = nn.functional.binary_cross_entropy_with_logits(disc_logits, labels.float(), reduction="none")
    non_pad = attention_mask.float()
    rtd_loss = (bce * non_pad).sum() / (non_pad.sum() + LOSS_EPS)
    # ELECTRA 15 % (paper §3.5): the same BCE over the active slots' positions only.
    at_slots = torch.zeros(b, s)
    for r, row in enumerate(OBJECTIVE_SLOTS):
        for pos, active, _, _ in row:
            if active:
                at_slots[r, pos] = 1.0
    rtd_loss_masked_only = (bce * at_slots).sum() / (at_slots.sum() + LOSS_EPS)

    return {
        "masked_input_ids": masked_input_ids,
        "positions": positions,
        "targets": targets,
        "weights": weights,
        "sampled_ids": sampled,
        "discriminator_input_ids": disc_input_ids,
        "labels": labels,
        "generator_logits": slot_logits,
        "discriminator_logits": disc_logits,
        "mlm_loss": mlm_loss,
        "rtd_loss": rtd_loss,
        "rtd_loss_masked_only": rtd_loss_masked_only,
        "total_loss": GEN_WEIGHT * mlm_loss + DISC_WEIGHT * rtd_loss,
        "total_loss_masked_only": GEN_WEIGHT * mlm_loss + DISC_WEIGHT * rtd_loss_masked_only,
    }


def make_objective_fixture(
    out: Path,
    models_dir: Path,
    discriminator: ElectraForPreTraining,
    generator: ElectraForMaskedLM,
    inputs: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Write the pre-training loss reference (``expected.json`` and ``README.md``) to ``out``."""
    result = objective_reference(discriminator, generator, inputs)
    out.mkdir(parents=True, exist_ok=True)
    payload = {key: tensor_to_lists(t) for key, t in result.items()}
    payload.update(OBJECTIVE_SPECIAL_IDS)
    payload.update(gen_weight=GEN_WEIGHT, disc_weight=DISC_WEIGHT)
    write_text(out / EXPECTED_FILE, format_json(payload) + "\n")
    try:
        models = models_dir.relative_to(REPO_ROOT)
    except ValueError:
        models = models_dir
    b, n = result["positions"].shape
    lines = [
        "# objective-tiny: reference ELECTRA pre-training losses",
        "",
        "Generated by `scripts/make_hf_fixtures.py` (`make_objective_fixture`); do not edit by hand.",
        f"Models: the tiny discriminator and generator of `{models}` (eval mode, float32, CPU), whose",
        "embedding blocks are identical, as in ELECTRA's shared-embedding setup; inputs: its `inputs.json`.",
        "",
        f"`{EXPECTED_FILE}` holds, for the batch of `inputs.json` and {n} prediction slots per row:",
        "",
        f"- `positions`, `targets`, `weights` [{b}, {n}]: slot positions, original ids (0 for unused slots),",
        "  1.0 for active slots. Unused slots point at position 0 with weight 0.",
        "- `masked_input_ids` [b, s]: the generator input, `mask_token_id` at the active slots chosen for",
        "  masking; one active slot (row 0, position 4) stays unmasked, the 15 % case of spec 1.2.",
        f"- `sampled_ids` [{b}, {n}]: fixed replacement ids (standing in for Gumbel samples); two equal",
        "  the original token and must be labelled original.",
        "- `discriminator_input_ids`, `labels` [b, s]: the originals with the samples written at every",
        "  active slot; label 1 iff the id changed.",
        f"- `generator_logits` [{b}, {n}, vocab]: generator MLM logits at the slots;",
        "  `discriminator_logits` [b, s]: RTD logits.",
        "- `mlm_loss` = Σ w·CE / (Σ w + 1e-6) over the slots; `rtd_loss` = Σ m·BCEWithLogits / (Σ m + 1e-6)",
        "  over non-pad tokens (`[CLS]`/`[SEP]` included); `total_loss` = gen_weight·mlm_loss +",
        f"  disc_weight·rtd_loss with gen_weight {GEN_WEIGHT} and disc_weight {DISC_WEIGHT}.",
        "- `rtd_loss_masked_only`, `total_loss_masked_only`: the same with the BCE over the active",
        "  slots' positions only (the `electra-15` objective).",
        "- `pad_token_id`, `cls_token_id`, `sep_token_id`, `mask_token_id`: the special ids used.",
        "",
        f"- torch {torch.__version__}, transformers {transformers.__version__}; values written with 9",
        "  significant digits (exact float32 round trip).",
        "",
    ]
    write_text(out / README_FILE, "\n".join(lines))
    return result


# --------------------------------------------------------------------------- released pair


# A generator that `ObjectiveConfig::generator_config` derives from the discriminator (as the
# reference's `get_generator_config` does: half the width, heads = hidden / 64 but at least 1,
# FFN 4x hidden), embedding at the discriminator's width, as Google's released pairs do.
PAIR_GENERATOR_CONFIG = dict(DISCRIMINATOR_CONFIG, hidden_size=16, num_attention_heads=1, intermediate_size=64)

# The released checkpoints store the shared block twice; here the generator's copy differs from
# the discriminator's in two tensors, by these amounts, so that the Rust loader must report them.
PAIR_POSITION_NUDGE = ((3, 5), 0.05)
PAIR_LAYER_NORM_BIAS_NUDGE = (7, -0.05)


@torch.no_grad()
def build_pair(discriminator: ElectraForPreTraining) -> ElectraForMaskedLM:
    """A generator for ``discriminator`` whose embedding block is the discriminator's, nudged."""
    torch.manual_seed(SEED + 2)
    generator = ElectraForMaskedLM(ElectraConfig(**PAIR_GENERATOR_CONFIG))
    randomise(generator, torch.Generator().manual_seed(SEED + 3))
    generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
    (row, col), amount = PAIR_POSITION_NUDGE
    generator.electra.embeddings.position_embeddings.weight[row, col] += amount
    index, amount = PAIR_LAYER_NORM_BIAS_NUDGE
    generator.electra.embeddings.LayerNorm.bias[index] += amount
    check_tied(generator)
    generator.to(torch.float32)
    generator.eval()
    return generator


def with_embeddings_of(generator: ElectraForMaskedLM, donor: nn.Module) -> ElectraForMaskedLM:
    """A copy of ``generator`` whose embedding block (and so its tied output layer) is ``donor``'s."""
    copy = ElectraForMaskedLM(generator.config)
    copy.load_state_dict(generator.state_dict())
    with torch.no_grad():
        copy.electra.embeddings.load_state_dict(donor.state_dict())
    check_tied(copy)
    copy.eval()
    return copy


def make_pair_fixture(out: Path, discriminator: ElectraForPreTraining, inputs: dict[str, torch.Tensor]) -> dict:
    """A released-style pair and the first step's losses of continuing it (``electra-run``'s test).

    Writes ``generator/`` and ``discriminator/`` (safetensors, as ``save_pretrained``) and
    ``expected.json``: the losses on the objective fixture's batch and slots when the generator
    reads the discriminator's copy of the embeddings (``tied`` keeps that copy) and when it reads
    its own (``untied`` and ``gdes`` keep both copies); the discriminator reads its own in all.
    """
    generator = build_pair(discriminator)
    generator.save_pretrained(reset_dir(out / GENERATOR_DIR), safe_serialization=True)
    discriminator.save_pretrained(reset_dir(out / DISCRIMINATOR_DIR), safe_serialization=True)
    kept = objective_reference(
        discriminator, with_embeddings_of(generator, discriminator.electra.embeddings), inputs
    )
    own = objective_reference(discriminator, generator, inputs)
    payload = {
        "discriminator_copy": {k: kept[k].item() for k in ("mlm_loss", "rtd_loss", "total_loss")},
        "own_copies": {k: own[k].item() for k in ("mlm_loss", "rtd_loss", "total_loss")},
        "differences": {
            "embeddings.position_embeddings": abs(PAIR_POSITION_NUDGE[1]),
            "embeddings.LayerNorm.bias": abs(PAIR_LAYER_NORM_BIAS_NUDGE[1]),
        },
    }
    payload.update(OBJECTIVE_SPECIAL_IDS)
    payload.update(gen_weight=GEN_WEIGHT, disc_weight=DISC_WEIGHT)
    write_text(out / EXPECTED_FILE, format_json(payload) + "\n")
    lines = [
        "# hf-pair: continuing pre-training from a released generator and discriminator",
        "",
        "Generated by `scripts/make_hf_fixtures.py` (`make_pair_fixture`); do not edit by hand.",
        "",
        "- `discriminator/`: the tiny `ElectraForPreTraining` of `electra-model/tests/fixtures/hf-tiny`.",
        "- `generator/`: an `ElectraForMaskedLM` of half its width (hidden 16, 1 head, FFN 64, 2 layers:",
        "  what `ObjectiveConfig::generator_config` derives), whose embedding block is the",
        f"  discriminator's with `position_embeddings[{PAIR_POSITION_NUDGE[0][0]}][{PAIR_POSITION_NUDGE[0][1]}]` "
        f"moved by {PAIR_POSITION_NUDGE[1]} and",
        f"  `LayerNorm.bias[{PAIR_LAYER_NORM_BIAS_NUDGE[0]}]` by {PAIR_LAYER_NORM_BIAS_NUDGE[1]} "
        "(released pairs store the shared block twice).",
        f"- `{EXPECTED_FILE}`: on the batch of `hf-tiny/inputs.json` with the slots and replacements of",
        "  `objective-tiny/expected.json`, the generator MLM loss, the discriminator RTD loss and the total",
        "  (gen_weight 1, disc_weight 50), computed by torch in eval mode: `discriminator_copy` with the",
        "  generator reading the discriminator's copy of the block (what `tied` keeps), `own_copies` with",
        "  each network reading its own (`untied`, and `gdes` with E_G the generator's copy); `differences`:",
        "  the largest difference per tensor between the two copies.",
        f"- torch {torch.__version__}, transformers {transformers.__version__}.",
        "",
    ]
    write_text(out / README_FILE, "\n".join(lines))
    return payload


# --------------------------------------------------------------------------- checks


def assert_same(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    assert actual.keys() == expected.keys(), what
    for key in expected:
        a, e = actual[key], expected[key]
        if not torch.equal(a, e):
            diff = (a - e).abs().max().item() if a.shape == e.shape else f"shapes {a.shape} vs {e.shape}"
            raise AssertionError(f"{what}: {key} differs from expected (max abs diff {diff})")


def reload_and_check(
    out: Path,
    discriminator: ElectraForPreTraining,
    generator: ElectraForMaskedLM,
    inputs: dict[str, torch.Tensor],
    expected: dict[str, dict[str, torch.Tensor]],
) -> None:
    """Reload every saved checkpoint with ``from_pretrained`` and compare weights and outputs."""
    cases = [
        (ElectraForPreTraining, DISCRIMINATOR_DIR, discriminator, "discriminator"),
        (ElectraForPreTraining, DISCRIMINATOR_BIN_DIR, discriminator, "discriminator"),
        (ElectraForMaskedLM, GENERATOR_DIR, generator, "generator"),
    ]
    for cls, subdir, original, key in cases:
        reloaded, info = cls.from_pretrained(out / subdir, output_loading_info=True)
        reloaded.eval()
        problems = {k: v for k, v in info.items() if v}
        assert not problems, f"{subdir}: loading problems {problems}"
        original_state, reloaded_state = original.state_dict(), reloaded.state_dict()
        assert original_state.keys() == reloaded_state.keys(), subdir
        for name, tensor in original_state.items():
            assert torch.equal(tensor, reloaded_state[name]), f"{subdir}: weight {name} differs after reload"
        if isinstance(reloaded, ElectraForMaskedLM):
            check_tied(reloaded)
        assert_same(run_model(reloaded, inputs), expected[key], subdir)
        print(f"reload ok: {subdir}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder; relative paths are resolved against the repository root (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--objective-out",
        type=Path,
        default=DEFAULT_OBJECTIVE_OUT,
        help="output folder of the pre-training loss reference, resolved like --out "
        f"(default: {DEFAULT_OBJECTIVE_OUT})",
    )
    parser.add_argument(
        "--pair-out",
        type=Path,
        default=DEFAULT_PAIR_OUT,
        help="output folder of the released-pair fixture (continued pre-training), resolved like "
        f"--out (default: {DEFAULT_PAIR_OUT})",
    )
    parser.add_argument(
        "--pair-only",
        action="store_true",
        help="write only the released-pair fixture (--pair-out), leaving hf-tiny and the objective "
        "reference as they are",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out if args.out.is_absolute() else REPO_ROOT / args.out
    objective_out = args.objective_out if args.objective_out.is_absolute() else REPO_ROOT / args.objective_out
    if int(transformers.__version__.split(".")[0]) >= 5:
        sys.exit(
            f"transformers {transformers.__version__} cannot write pytorch_model.bin; "
            "install the pinned 4.x version: pip install -r scripts/requirements-fixtures.txt"
        )

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    discriminator, generator = build_models()
    inputs = make_inputs()
    pair_out = args.pair_out if args.pair_out.is_absolute() else REPO_ROOT / args.pair_out
    if args.pair_only:
        write_pair(pair_out, discriminator, inputs)
        return
    expected = {
        "discriminator": run_model(discriminator, inputs),
        "generator": run_model(generator, inputs),
    }
    write_outputs(out, discriminator, generator, inputs, expected)
    reload_and_check(out, discriminator, generator, inputs, expected)

    for name, acts in expected.items():
        logits = acts["logits"]
        print(f"{name}: logits shape {list(logits.shape)}, max |logit| = {logits.abs().max().item():.4f}, "
              f"std = {logits.std().item():.4f}")
    print(f"wrote {out}")

    losses = make_objective_fixture(objective_out, out, discriminator, generator, inputs)
    print(
        f"objective: mlm_loss {losses['mlm_loss'].item():.6f}, rtd_loss {losses['rtd_loss'].item():.6f}, "
        f"total {losses['total_loss'].item():.6f}"
    )
    print(f"wrote {objective_out}")

    write_pair(pair_out, discriminator, inputs)


def write_pair(out: Path, discriminator: ElectraForPreTraining, inputs: dict[str, torch.Tensor]) -> None:
    pair = make_pair_fixture(out, discriminator, inputs)
    print(f"pair: {pair['discriminator_copy']} (discriminator's copy), {pair['own_copies']} (own copies)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
