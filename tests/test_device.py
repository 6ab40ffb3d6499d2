"""funnelkit.device: every device string is checked by the kit, with one message naming what was
asked for and what this machine has; fk.load, LiveRun and the command line go through it."""

import subprocess
import sys

import pytest
import torch

import funnelkit as fk
from funnelkit.device import available_devices, pick_device
from funnelkit.app.live import LiveRun
from funnelkit.app.live_settings import LiveSettings

SHIPPED = fk.paths.shipped_checkpoint("four-circles", "nsf", "quick")


@pytest.fixture
def two_gpus_and_mps(monkeypatch):
    """A machine that says it has two CUDA GPUs and an Apple GPU (nothing is put on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_available_devices_follow_what_torch_sees():
    names = available_devices()
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert names[:2] == ["auto", "cpu"]
    assert ("cuda" in names) == (count > 0) and [n for n in names if n.startswith("cuda:")] == [
        f"cuda:{i}" for i in range(count)]
    assert ("mps" in names) == torch.backends.mps.is_available()


def test_every_available_name_is_accepted_here():
    for name in available_devices():
        device = pick_device(name)
        assert isinstance(device, torch.device)
        assert pick_device(device) == device  # a torch.device passes through the same check
        torch.empty(1, device=device)  # and torch can really use it


def test_names_are_matched_without_regard_to_case_or_spaces():
    assert pick_device(" CPU ") == pick_device("cpu") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, two_gpus_and_mps):
    assert pick_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")


def test_a_gpu_number_below_the_count_is_accepted_and_above_refused(two_gpus_and_mps):
    assert available_devices() == ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "mps"]
    assert pick_device("cuda:1") == torch.device("cuda", 1) == pick_device(torch.device("cuda", 1))
    assert pick_device("mps") == torch.device("mps")
    for asked in ("cuda:2", "cuda:7", torch.device("cuda", 7)):
        with pytest.raises(ValueError) as error:
            pick_device(asked)
        message = str(error.value)
        assert repr(asked) in message and "this machine has 2 CUDA GPUs (cuda:0 to cuda:1)" in message
        assert message.endswith("available here: auto, cpu, cuda, cuda:0, cuda:1, mps")


@pytest.mark.parametrize("asked, words", [
    ("cuda", "torch sees no CUDA GPU on this machine"),
    ("cuda:0", "torch sees no CUDA GPU on this machine"),
    ("mps", "torch sees no MPS (Apple GPU) on this machine"),
    ("gpu", "unknown device 'gpu': expected auto, cpu, cuda, cuda:N (N a GPU number) or mps"),
    ("tpu", "unknown device 'tpu'"),
    ("cuda:x", "unknown device 'cuda:x'"),
    ("cuda:-1", "unknown device 'cuda:-1'"),
    ("", "unknown device ''"),
    (None, "device must be a name such as 'cpu' or a torch.device, got None (NoneType)"),
    (0, "got 0 (int)"),
])
def test_unknown_or_absent_devices_get_one_message_naming_both(cpu_only, asked, words):
    with pytest.raises(ValueError) as error:
        pick_device(asked)
    message = str(error.value)
    assert words in message and message.endswith("available here: auto, cpu")
    assert repr(asked) in message


def test_fk_load_checks_the_device_before_reading_the_file(tmp_path):
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        fk.load(tmp_path / "absent.pt", device="gpu")  # not FileNotFoundError: the device comes first
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=f"'cuda:{cuda}' was asked for"):
        fk.load(tmp_path / "absent.pt", device=f"cuda:{cuda}")  # one past the last GPU (or no GPU)


def test_fk_load_puts_the_model_on_the_picked_device():
    assert SHIPPED.is_file(), f"the tracked checkpoint {SHIPPED} is missing"
    x = fk.data.four_circles(8, seed=1)
    on_cpu = fk.load(SHIPPED, device="cpu")
    for name in available_devices():
        model = fk.load(SHIPPED, device=name)
        picked = pick_device(name)
        assert model.device.type == picked.type and (picked.index is None or model.device.index == picked.index)
        with torch.no_grad():
            assert torch.allclose(model.log_prob(x.to(model.device)).cpu(), on_cpu.log_prob(x), atol=1e-4)


def test_a_live_run_refuses_an_absent_device_with_the_kits_message(cpu_only):
    with pytest.raises(ValueError, match="'cuda:7' was asked for.*available here: auto, cpu"):
        LiveRun(LiveSettings(hidden_features=8, num_bins=4), device="cuda:7")


@pytest.mark.parametrize("command", ["eval", "train"])
def test_the_command_line_refuses_a_bad_device_in_one_line(tmp_path, command):
    """``eval`` of a four-circles run ignores --device (it runs on the CPU), but checks it first."""
    assert SHIPPED.is_file(), f"the tracked checkpoint {SHIPPED} is missing"
    args = {"eval": ["eval", SHIPPED], "train": ["train", "four-circles", "--out", tmp_path / "run"]}[command]
    result = subprocess.run([sys.executable, "-m", "funnelkit", *map(str, args), "--device", "gpu"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"funnelkit {command}: error: unknown device 'gpu': expected auto, cpu, cuda, cuda:N (N a GPU number) "
        f"or mps; available here: {', '.join(available_devices())}"]
    assert not (tmp_path / "run").exists()
