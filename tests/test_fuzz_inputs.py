"""Fuzz: random bytes to every reader and random numbers to every command's checks give only the project's
own one-line errors (:class:`VarEmitterError`), never another exception."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_var_emitter.checkpoints import load_checkpoint
from napari_var_emitter.cli import build_parser, evaluate_cmd, predict_cmd, render_cmd, simulate_cmd
from napari_var_emitter.errors import VarEmitterError
from napari_var_emitter.io import read_emitters, read_stack, read_table

FUZZ = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: real file signatures, so that random bytes get past the first check of each parser
MAGIC = [
    b"",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"\x89HDF\r\n\x1a\n",
    b"PK\x03\x04",
    b'"id","frame","x [nm]"\n',
]


def _zip_with(payload: bytes) -> bytes:
    """A zip archive shaped like a torch checkpoint around random bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", b"3\n")
    return buf.getvalue()


READERS = {
    ".tif": read_stack,
    ".csv": read_table,
    ".h5": read_table,
    "_emitters.h5": read_emitters,
    ".pt": load_checkpoint,
}


@pytest.mark.parametrize("suffix", list(READERS))
@FUZZ
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=2048), zipped=st.booleans())
def test_readers_answer_random_bytes_with_one_line_errors(tmp_path, suffix, magic, body, zipped):
    data = _zip_with(body) if suffix == ".pt" and zipped else magic + body
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        READERS[suffix](path)
    except VarEmitterError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e300, 65535.0, 70000.0, 0.5, 1.0]),
)
ints = st.integers(min_value=-(2**40), max_value=2**40)


def _check(module, argv: list[str]) -> None:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's usage error, e.g. "-inf" as one of two values (taken for a flag)
        assert exc.code == 2
        return
    try:
        module.validate_args(args)
        if module is simulate_cmd:  # the config built from valid flags must validate too
            simulate_cmd.check_dynamic_range(simulate_cmd.build_config(args))
    except VarEmitterError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(a=numbers, b=numbers, c=numbers, f0=ints, f1=ints)
def test_render_checks_random_numbers(tmp_path, a, b, c, f0, f1):
    (tmp_path / "l.csv").write_text('"frame","x [nm]","y [nm]"\n1,10,10\n')
    argv = ["render", str(tmp_path / "l.csv"), "--out", str(tmp_path / "o.tif"), f"--pixel-nm={a!r}"]
    _check(render_cmd, [*argv, f"--sigma-nm={b!r}", "--frames", str(f0), str(f1)])


@FUZZ
@given(values=st.lists(numbers, min_size=12, max_size=12), size=st.tuples(ints, ints))
def test_simulate_checks_random_numbers(tmp_path, values, size):
    v = [repr(x) for x in values]
    argv = ["simulate", "--out", str(tmp_path / "sim"), "--frame-size", str(size[0]), str(size[1])]
    argv += [f"--pixel-size={v[0]}", f"--density={v[1]}", "--photons", v[2], v[3], "--background", v[4], v[5]]
    argv += [
        f"--bg-field={v[6]}",
        f"--on-time={v[7]}",
        "--sigma",
        v[8],
        v[9],
        f"--baseline={v[10]}",
        f"--qe={v[11]}",
    ]
    _check(simulate_cmd, argv)


@FUZZ
@given(values=st.lists(numbers, min_size=7, max_size=7), f0=ints, f1=ints, batch=ints)
def test_predict_checks_random_numbers(tmp_path, values, f0, f1, batch):
    (tmp_path / "m.tif").write_bytes(b"")
    v = [repr(x) for x in values]
    argv = ["predict", str(tmp_path / "m.tif"), "--out", str(tmp_path / "o.csv"), f"--threshold={v[0]}"]
    argv += [f"--camera-baseline={v[1]}", f"--camera-e-per-adu={v[2]}", f"--camera-em-gain={v[3]}"]
    argv += [f"--camera-qe={v[4]}", f"--pixel-size={v[5]}", f"--max-sigma-nm={v[6]}"]
    _check(predict_cmd, [*argv, "--frames", str(f0), str(f1), "--batch-size", str(batch)])


@FUZZ
@given(a=numbers, b=numbers, c=numbers)
def test_evaluate_checks_random_numbers(tmp_path, a, b, c):
    for name in ("p.csv", "t.h5"):
        (tmp_path / name).write_bytes(b"")
    argv = ["evaluate", "--pred", str(tmp_path / "p.csv"), "--truth", str(tmp_path / "t.h5")]
    _check(evaluate_cmd, [*argv, f"--tolerance-nm={a!r}", f"--tolerance-z-nm={b!r}", f"--border-px={c!r}"])
