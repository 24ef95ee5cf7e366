"""Models and runs as data: one ModelSpec for judges and ALLMs, options that reach the backend
unchanged, configurations checked when loaded, and the command line built from the registries."""

from __future__ import annotations

import json
import re

import pytest

import jasco_utils
from jasco_utils.cli import build_parser, main
from jasco_utils.cli.flags import cli_options
from jasco_utils.config import get_judge, load_allms, load_judges, load_run_config
from jasco_utils.core.errors import ConfigError
from jasco_utils.judging.prompts import judge_templates
from jasco_utils.models import ENGINES, check_options, engine_options, make_backend
from jasco_utils.models.embedded import EmbeddedBackend
from jasco_utils.models.registry import check_spec
from jasco_utils.models.spec import ModelSpec


def write(tmp_path, text: str, name: str = "run.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_top_level_exports_the_stable_entry_points():
    from jasco_utils import best_mean, dependence, parse_judgement, parse_reask  # noqa: F401

    assert jasco_utils.parse_judgement("Rating: 2\nOrientation: Good").orientation == "Both"
    with pytest.raises(AttributeError):
        jasco_utils.no_such_thing  # noqa: B018


def test_judges_and_allms_are_one_spec():
    judge = get_judge("llama-3.1-70b")
    allm = load_run_config("paper").allms[0]
    assert isinstance(judge, ModelSpec) and isinstance(allm, ModelSpec)
    assert judge.options == {
        "tensor_parallel_size": 4,
        "dtype": "float16",
        "max_model_len": 4096,
        "chat_format": "original",
    }
    assert (allm.engine, allm.model) == ("vllm", "Qwen/Qwen2-Audio-7B-Instruct")
    assert ModelSpec.from_dict(json.loads(json.dumps(judge.to_dict()))) == judge


def test_unknown_option_is_refused_with_the_accepted_ones():
    with pytest.raises(
        ValueError, match=r"takes no option\(s\) \['n_ctxx'\]; it takes \['n_ctx', 'revision', 'threads'\]"
    ):
        check_options("embedded", {"n_ctxx": 2048})
    with pytest.raises(ConfigError, match="n_ctxx"):
        check_spec(ModelSpec(key="j", engine="embedded", options={"n_ctxx": 1}))


def test_vllm_takes_any_engine_argument_but_not_typos():
    check_options(
        "vllm",
        {
            "trust_remote_code": True,
            "limit_mm_per_prompt": {"audio": 1},
            "revision": "main",
            "gpu_memory_utilization": 0.8,
        },
    )
    with pytest.raises(ValueError, match="tensor_paralel_size"):
        check_options("vllm", {"tensor_paralel_size": 2})


def test_options_reach_the_backend_constructor_unchanged():
    backend = make_backend("embedded", n_ctx=1024, threads=1)
    with backend:
        assert isinstance(backend, EmbeddedBackend) and backend.n_ctx == 1024
        assert backend.identity["n_ctx"] == 1024


def test_secret_options_are_refused():
    with pytest.raises(ConfigError, match="looks like a secret"):
        check_spec(ModelSpec(key="j", engine="openai", model="m", options={"api_key": "sk-123"}))
    check_spec(ModelSpec(key="j", engine="openai", model="m", options={"api_key_env": "MY_KEY"}))


def test_judges_file_errors_name_the_entry(tmp_path):
    bad = write(tmp_path, '["j"]\nengine = "embedded"\ntemplate = "judge_nope"\n', "judges.toml")
    with pytest.raises(ConfigError, match=r"judges.toml: j: template 'judge_nope' is not one of \['judge_original'"):
        load_judges(bad)
    bad = write(tmp_path, '["j"]\nengine = "embedded"\noptons = { n_ctx = 1 }\n', "judges.toml")
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['optons'\]"):
        load_judges(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\ncllips = [1]\n', r"unknown field\(s\) \['cllips'\]"),
        ('[judging]\njudges = ["llama-3-70b"]\n', "no judge named 'llama-3-70b'"),
        ('[judging]\nstructured = "yaml"\n', "judging.structured must be one of"),
        ('[judging]\nmax_tokens = "many"\n', "judging.max_tokens must be an integer"),
        ("clips = [0, 3]\n", "clip ids 1..80"),
        ('[[allms]]\nname = "A"\nengine = "vllm"\n', "A: engine vllm needs a model"),
        (
            '[[allms]]\nname = "A"\nengine = "vllm"\nmodel = "m"\noptions = { tensor_paralel_size = 2 }\n',
            r"allms\[0\]: A: engine vllm takes no option",
        ),
        ('[[allms]]\nname = "A"\nengine = "import"\n', "an import needs a path"),
        ('[[allms]]\nname = "A"\nengine = "tgi"\nmodel = "m"\n', "engine 'tgi' is not one of"),
    ],
)
def test_run_configurations_are_checked_when_loaded(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(write(tmp_path, text))


def test_the_removed_kind_field_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"allms\[0\]\]? has unknown field\(s\) \['kind'\]"):
        load_run_config(write(tmp_path, '[[allms]]\nname = "C"\nkind = "cascade"\nllm_engine = "embedded"\n'))


def test_cli_choices_and_flags_come_from_the_registries():
    parser = build_parser()
    judge = next(a for a in parser._subparsers._group_actions[0].choices["judge"]._actions if a.dest == "template")
    assert judge.choices == judge_templates()
    args = parser.parse_args(
        [
            "judge",
            "o.csv",
            "--engine",
            "vllm",
            "--model",
            "m",
            "--gpu-memory-utilization",
            "0.5",
            "--engine-arg",
            "trust_remote_code=true",
            "--engine-arg",
            'limit_mm_per_prompt={"audio": 1}',
        ]
    )
    assert cli_options(args, ["vllm"]) == {
        "vllm": {"gpu_memory_utilization": 0.5, "trust_remote_code": True, "limit_mm_per_prompt": {"audio": 1}}
    }
    for engine in ENGINES:
        for name, opt in engine_options(engine).items():
            if opt.type is not object and name != "seed":
                assert (
                    f"--{name.replace('_', '-')}" in parser._subparsers._group_actions[0].choices["judge"].format_help()
                )


def test_cli_refuses_options_before_loading_a_model(tmp_path, capsys):
    outputs = write(tmp_path, "id,prompt\n", "outputs.csv")
    assert main(["judge", str(outputs), "--judge", "smollm2", "--engine-arg", "n_ctxx=1"]) == 1
    assert "takes no option(s) ['n_ctxx']" in capsys.readouterr().err
    assert main(["judge", str(outputs), "--judge", "smollm2", "--tensor-parallel-size", "2"]) == 1
    assert "do not apply to engine(s) ['embedded']" in capsys.readouterr().err


#: The architecture families the named ALLMs must cover.
FAMILIES_WANTED = {
    "qwen2_audio",
    "qwen2_5_omni",
    "qwen3_omni_moe",
    "voxtral",
    "phi4mm",
    "gemma3n",
    "granite_speech",
    "audioflamingo3",
    "ultravox",
    "kimi_audio",
    "midashenglm",
    "minicpmo",
    "hosted",
}


def test_named_allms_cover_the_families_and_the_docs_say_which_run_here():
    """Every named ALLM is in one row of the families page's table, which says "yes" exactly
    for the families the tests run (a tiny model of each, or Qwen2-Audio's own test)."""
    from helpers.clips import REPO_ROOT
    from helpers.families import FAMILIES

    named = load_allms()
    assert FAMILIES_WANTED <= {s.family for s in named.values()}
    assert all(s.engine in ("vllm", "openai") and s.model for s in named.values())
    page = (REPO_ROOT / "docs" / "development" / "families.md").read_text(encoding="utf-8")
    table = page.split("| family | named ALLMs | tested here |", 1)[1].split("\n\n", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.strip().splitlines()[1:]]
    tested: dict[str, bool] = {}
    for _, allms, verdict in rows:
        for key in re.findall(r"`([^`]+)`", allms):
            assert key not in tested, f"{key} in two rows of the families table"
            tested[key] = verdict.startswith(("yes", "the openai engine"))
    assert set(tested) == set(named), "the families table and allms.toml name different ALLMs"
    run_here = {named[k].family for k, yes in tested.items() if yes}
    assert set(FAMILIES) | {"qwen2_audio", "hosted"} == run_here
    assert not {named[k].family for k, yes in tested.items() if not yes} & set(FAMILIES)


def test_a_named_allm_in_a_run_configuration_and_on_the_command_line(tmp_path, capsys, synthetic_dataset):
    from jasco_utils.data.manifest import build_manifest, write_manifest

    cfg = load_run_config(write(tmp_path, '[[allms]]\nallm = "qwen2-audio"\noptions = { max_model_len = 2048 }\n'))
    [spec] = cfg.allms
    assert spec.model == "Qwen/Qwen2-Audio-7B-Instruct" and spec.options["max_model_len"] == 2048
    assert spec.options["limit_mm_per_prompt"] == {"audio": 1} and spec.family == "qwen2_audio"
    with pytest.raises(ConfigError, match="no ALLM named 'qwen-audio'; known: qwen2-audio"):
        load_run_config(write(tmp_path, '[[allms]]\nallm = "qwen-audio"\n'))
    manifest = write_manifest(build_manifest(synthetic_dataset), tmp_path / "m.csv")
    assert (
        main(
            [
                "infer",
                str(manifest),
                "--allm",
                "qwen-audio",
                "--store",
                str(tmp_path / "c.sqlite"),
                "--out",
                str(tmp_path / "o.csv"),
            ]
        )
        != 0
    )
    err = capsys.readouterr().err
    assert "qwen2-audio" in err and "Traceback" not in err
