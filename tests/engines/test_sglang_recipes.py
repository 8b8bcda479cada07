"""Every recipe command in the SGLang Diffusion guides is reproduced by one `python -m diffexp` line.

The guide's command is extracted from the markdown at test time (so the test follows the guide),
split like a shell would, and compared with the argv diffexp builds: same flags, same values, order
aside; `--flag=value` and `--flag value` are the same, a bare StoreBoolean flag means `true`.
Normalisations where the 0.5.23 source differs from the guides (the source wins):
  - `--warmup` does not exist in 0.5.23 (argparse rejects it as an ambiguous prefix of
    `--warmup-mode`, `--warmup-resolutions`, ...); its meaning is `--warmup-mode request`.
  - `--num-gpus 1` is ServerArgs.num_gpus's default; diffexp passes --num-gpus only above 1.
Harness flags (--output-path, --perf-dump-path) place files in the run directory and are ignored;
a `--config` file is compared by content. Two harness defaults of engine=sglang (conf/engine/sglang.yaml)
are ignored too, since no guide command states them and neither changes the work a recipe asks for:
  - `--performance-mode manual` (engine.performance_mode): SGLang's default `auto` may rewrite the
    placement (CFG-parallel for `--num-gpus 2` alone, offload from free memory); manual keeps what the
    recipe states, and the run records what SGLang settled on as `resolved.*` either way.
  - `--log-level debug` (engine.log_level): 0.5.23 logs its residency hint and memory analysis only at
    debug level. Recipes whose guide command says `--log-level info` keep it (engine.log_level=info).
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from diffexp.config import compose, to_config
from diffexp.engines import validate
from diffexp.engines.sglang import engine, flags
from tests.conftest import SHARED

GUIDES = SHARED / "reference" / "sglang-diffusion-guides"
BENCH, TUNE, OLDER = "benchmark-and-profile.md", "performance-tuning.md", "performance-tuning-older.md"
ASSET_DIR = "/workspace/gen_benchmark/figs"  # the guides' asset folder; conf/model's default too


@dataclass
class GuideCommand:
    prefix: list[str]  # tokens before `sglang generate` (env assignments, nsys/time wrappers)
    args: list[str]  # tokens after `sglang generate`
    configs: dict[str, dict]  # --config files the guide writes with printf, by path

    def value(self, flag: str):
        return dict(parse_args(self.args)).get(flag, "<absent>")


def guide_commands(name: str) -> list[GuideCommand]:
    """All `sglang generate` commands in a guide, continuation lines joined."""
    text = (GUIDES / name).read_text()
    logical, pending = [], ""
    for line in text.splitlines():
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    configs: dict[str, dict] = {}
    commands = []
    for line in logical:
        if found := re.search(r"printf '(\{.*\})\\n' > \"?([^\"\s]+)", line):
            configs[found.group(2)] = json.loads(found.group(1))
        if "sglang generate" not in line:
            continue
        try:
            tokens = [t.replace("${ASSET_DIR}", ASSET_DIR) for t in shlex.split(line, comments=True)]
        except ValueError:  # prose with an unbalanced quote
            continue
        # The flattened guide glues prose to a command ("... --ulysses-degree=4sglang generate ...").
        at = next(
            (i for i in range(len(tokens) - 1) if tokens[i].endswith("sglang") and tokens[i + 1] == "generate"), None
        )
        if at is None:  # prose mentioning `sglang generate`
            continue
        prefix, args = (tokens[:at] if tokens[at] == "sglang" else []), tokens[at + 2 :]
        if args and args[0].startswith("--") and "--model-path" in {a.split("=")[0] for a in args}:
            commands.append(GuideCommand(prefix, args, dict(configs)))
    return commands


def parse_args(args: list[str]) -> list[tuple[str, object]]:
    """(flag, value) pairs the way SGLang's argparse reads them; values normalised for comparison."""
    pairs, i = [], 0
    while i < len(args):
        token = args[i]
        assert token.startswith("--"), f"stray token {token!r} in {args}"
        if "=" in token:
            flag, value = token.split("=", 1)
        elif token in flags.SWITCHES or token == "--warmup":  # --warmup: the guides' (pre-0.5.23) switch
            flag, value = token, None
        elif token in flags.BOOLEANS:
            following = args[i + 1].lower() if i + 1 < len(args) else ""
            flag, value = token, following if following in ("true", "false") else "true"
            i += following in ("true", "false")
        else:
            flag, value = token, args[i + 1]
            i += 1
        pairs.append((flag, value))
        i += 1
    return pairs


# engine=sglang's own defaults that no guide command states (see the module docstring).
HARNESS_DEFAULTS = {("--performance-mode", "manual"), ("--log-level", "debug")}


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value.lower() if isinstance(value, str) and value.lower() in ("true", "false") else value


def normalise(pairs, configs: dict[str, dict]) -> Counter:
    out = Counter()
    for flag, value in pairs:
        if flag in flags.HARNESS_FLAGS or (flag, value) in HARNESS_DEFAULTS:
            continue
        if flag == "--warmup":  # guide spelling → 0.5.23 spelling (see module docstring)
            flag, value = "--warmup-mode", "request"
        if flag == "--num-gpus" and _number(value) == flags.DEFAULT_NUM_GPUS:
            continue
        if flag == "--config":
            value = json.dumps(configs[value], sort_keys=True)
        out[(flag, _number(value))] += 1
    return out


@dataclass
class Recipe:
    id: str
    guide: str
    # The guide command this recipe reproduces: flag values it has, flags it lacks, its wrapper.
    has: dict[str, str]
    line: str  # the `python -m diffexp` arguments
    lacks: tuple[str, ...] = ()
    wrapper: str = ""
    notes: list[str] = field(default_factory=list)


RECIPES = [
    Recipe(
        "suite-1-qwen-image",
        BENCH,
        {"--model-path": "Qwen/Qwen-Image-2512"},
        "model=qwen_image offload=resident_dit_te compile=on engine.backend=null",
    ),
    Recipe(
        "suite-2-qwen-image-edit",
        BENCH,
        {"--model-path": "Qwen/Qwen-Image-Edit-2511"},
        "model=qwen_image_edit offload=resident_dit_te compile=on engine.backend=null",
    ),
    Recipe(
        "suite-3-flux1-dev",
        BENCH,
        {"--model-path": "black-forest-labs/FLUX.1-dev", "--save-output": None},
        "model=flux1_dev offload=default compile=on engine.backend=null",
    ),
    Recipe(
        "suite-4-flux2-dev",
        BENCH,
        {"--model-path": "black-forest-labs/FLUX.2-dev"},
        "model=flux2_dev offload=text_encoder_cpu compile=on engine.backend=null engine.save_output=null",
    ),
    Recipe(
        "suite-5-zimage-turbo",
        BENCH,
        {"--model-path": "Tongyi-MAI/Z-Image-Turbo"},
        "model=zimage_turbo offload=resident_dit_te compile=on engine.backend=null engine.log_level=info",
    ),
    Recipe(
        "suite-6-wan22-t2v-8gpu",
        BENCH,
        {"--model-path": "Wan-AI/Wan2.2-T2V-A14B-Diffusers"},
        "model=wan22_t2v parallel=cfg_ulysses4 offload=layerwise_te_cpu compile=on engine.backend=null engine.log_level=info",
    ),
    Recipe(
        "suite-7-wan22-ti2v",
        BENCH,
        {"--model-path": "Wan-AI/Wan2.2-TI2V-5B-Diffusers"},
        "model=wan22_ti2v offload=none compile=on engine.backend=null engine.log_level=info",
    ),
    Recipe(
        "profile-flux1-3-steps",
        BENCH,
        {"--model-path": "black-forest-labs/FLUX.1-dev", "--num-profiled-timesteps": "3"},
        "model=flux1_dev offload=default compile=on profile=torch profile.num_steps=3 engine.backend=null engine.save_output=null",
    ),
    Recipe(
        "profile-flux1-all-stages",
        BENCH,
        {"--profile-all-stages": None},
        "model=flux1_dev offload=default compile=on profile=torch profile.all_stages=true "
        "'model.sampling.prompt=A futuristic cyberpunk city at night' model.sampling.num_inference_steps=5 model.sampling.guidance_scale=null "
        "engine.backend=null engine.save_output=null",
    ),
    Recipe(
        "nsys-flux1-pass-a",
        BENCH,
        {"--model-path": "black-forest-labs/FLUX.1-dev"},
        "model=flux1_dev offload=default compile=on profile=nsys profile.nsys_delay_s=120 profile.nsys_duration_s=60 "
        "engine.backend=null engine.save_output=null",
        wrapper="nsys",
    ),
    Recipe(
        "nsys-flux1-pass-b",
        BENCH,
        {"--model-path": "black-forest-labs/FLUX.1-dev"},
        "model=flux1_dev offload=default compile=on engine.backend=null engine.save_output=null",
        wrapper="time",
    ),
    Recipe(
        "ltx2-twostage-2gpu",
        TUNE,
        {"--model-path": "Lightricks/LTX-2"},
        "model=ltx2 parallel=cfg_gpus2 offload=default compile=on engine.backend=null",
    ),
    Recipe(
        "ltx23-twostage-ti2v-2gpu",
        TUNE,
        {"--model-path": "Lightricks/LTX-2.3", "--cfg-parallel-size": "2"},
        "model=ltx23_twostage_ti2v parallel=cfg_size2 offload=default compile=on engine.backend=null",
    ),
    Recipe(
        "ltx23-onestage-2gpu",
        TUNE,
        {"--model-path": "Lightricks/LTX-2.3"},
        "model=ltx23 parallel=gpus2 offload=default compile=on engine.backend=null",
        lacks=("--pipeline-class-name",),
    ),
    Recipe(
        "ltx23-twostage-hires-2gpu",
        TUNE,
        {"--model-path": "Lightricks/LTX-2.3", "--width": "1536"},
        "model=ltx23_twostage_hires parallel=gpus2 offload=default compile=on engine.backend=null",
    ),
    Recipe(
        "joyai-image-edit",
        TUNE,
        {"--model-path": "jdopensource/JoyAI-Image-Edit-Diffusers"},
        "model=joyai_edit parallel=cfg2 offload=resident_dit compile=on",
    ),
    Recipe(
        "firered-image-edit-1.1",
        TUNE,
        {"--model-path": "FireRedTeam/FireRed-Image-Edit-1.1"},
        "model=firered_edit parallel=cfg2 offload=resident_dit compile=on",
    ),
    Recipe(
        "hunyuan3d-shape",
        TUNE,
        {"--model-path": "tencent/Hunyuan3D-2"},
        "model=hunyuan3d_shape offload=resident_dit compile=on",
    ),
    Recipe(
        "quick-max-speed-wan-a14b-8gpu",
        TUNE,
        {"--model-path": "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "--prompt": "..."},
        # The quick recipe leaves size, frames, steps, guidance and seed to SGLang's defaults; its prompt is "...".
        "model=wan22_t2v parallel=cfg_ulysses4 offload=default offload.text_encoder_cpu=true compile=on "
        "engine.backend=null model.sampling.prompt=... model.sampling.negative_prompt=null "
        "model.sampling.resolution=null model.sampling.num_frames=null model.sampling.num_inference_steps=null "
        "model.sampling.guidance_scale=null model.sampling.seed=null",
    ),
    Recipe(
        "older-ltx2-twostage-1gpu",
        OLDER,
        {"--model-path": "Lightricks/LTX-2"},
        "model=ltx2_twostage_hires offload=default compile=on engine.backend=null",
    ),
    Recipe(
        "older-ltx23-onestage-2gpu",
        OLDER,
        {"--model-path": "Lightricks/LTX-2.3"},
        "model=ltx23 parallel=gpus2 offload=default compile=on engine.backend=null",
        lacks=("--pipeline-class-name",),
    ),
    Recipe(
        "older-ltx23-twostage-hires-2gpu",
        OLDER,
        {"--model-path": "Lightricks/LTX-2.3", "--width": "1536"},
        "model=ltx23_twostage_hires parallel=gpus2 offload=default compile=on engine.backend=null",
    ),
]


def find_guide_command(recipe: Recipe) -> tuple[int, GuideCommand]:
    """(position in the guide, command): the one command the recipe's selector picks."""

    def matches(command: GuideCommand) -> bool:
        wrapper = command.prefix[0] if command.prefix and "=" not in command.prefix[0] else ""
        return (
            wrapper == recipe.wrapper
            and all(command.value(flag) == value for flag, value in recipe.has.items())
            and all(command.value(flag) == "<absent>" for flag in recipe.lacks)
        )

    found = [(i, c) for i, c in enumerate(guide_commands(recipe.guide)) if matches(c)]
    assert len(found) == 1, f"{recipe.id}: expected one matching command in {recipe.guide}, found {len(found)}"
    return found[0]


def diffexp_launch(recipe: Recipe, tmp_path: Path, monkeypatch) -> tuple[engine.Launch, object]:
    monkeypatch.delenv("DIFFEXP_ASSETS", raising=False)
    cfg = to_config(compose([*shlex.split(recipe.line), f"output_dir={tmp_path}", "engine.gpus=0"]))
    validate(cfg)
    return engine.prepare(cfg, tmp_path), cfg


def test_every_guide_command_is_covered():
    """No recipe silently disappears from, or is added to, the guides without a diffexp line."""
    covered = {(r.guide, find_guide_command(r)[0]) for r in RECIPES}
    assert len(covered) == len(RECIPES)
    concrete = [
        c
        for g in (BENCH, TUNE)
        for c in guide_commands(g)
        if "<" not in c.value("--model-path")  # placeholders (<MODEL>) are patterns, not recipes
        and not c.prefix[:1] == ["TORCH_COMPILE_DEBUG=1"]
    ]
    assert len(concrete) == sum(r.guide in (BENCH, TUNE) for r in RECIPES)


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.id for r in RECIPES])
def test_recipe_flags_match_the_guide(recipe, tmp_path, monkeypatch):
    _, guide = find_guide_command(recipe)
    launch, cfg = diffexp_launch(recipe, tmp_path, monkeypatch)
    generate_at = launch.command.index("generate")
    ours = launch.command[generate_at + 1 :]
    ours_configs = {str(launch.paths.generated_config): cfg.model.sglang_config}
    assert normalise(parse_args(ours), ours_configs) == normalise(parse_args(guide.args), guide.configs)
    if recipe.wrapper == "nsys":
        ours_prefix = launch.command[: generate_at - 1]

        def drop_output(tokens):
            return [t for i, t in enumerate(tokens) if t != "-o" and (i == 0 or tokens[i - 1] != "-o")]

        assert drop_output(ours_prefix) == drop_output(guide.prefix)
    if any(t.startswith("SGLANG_TORCH_PROFILER_DIR=") for t in guide.prefix):
        assert launch.env["SGLANG_TORCH_PROFILER_DIR"] == str(tmp_path / "traces")


def readme_lines() -> str:
    """The recipe table of docs/sglang.md: `python -c "from tests.engines.test_sglang_recipes import readme_lines as r; print(r())"`."""
    rows = ["| guide recipe | diffexp line |", "| --- | --- |"]
    rows += [f"| {r.guide}: {r.id} | `python -m diffexp {r.line}` |" for r in RECIPES]
    return "\n".join(rows)
