"""`trainer=ddp` with two real CPU processes (gloo): the stage trains, and only rank 0 writes."""

from __future__ import annotations

import torch

from conftest import compose_config, run_stage_script
from datamatters.models.checkpoint import load_checkpoint
from test_resume import TRAIN_ARGS, training_project


def test_ddp_on_two_cpu_processes_writes_one_valid_checkpoint(tmp_path) -> None:
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    project = training_project(
        tmp_path, *ddp, "train.kimg=0.384", "train.checkpoint_every_n_steps=10"
    )
    done = run_stage_script("train", TRAIN_ARGS, project)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "distributed_backend=gloo" in output and "All distributed processes registered" in output
    assert output.count("wrote models/generator.pt") == 1, "rank 0 alone writes the checkpoint"
    assert "rank 1]" not in output, "a worker logs nothing when nothing goes wrong"
    assert sorted(p.name for p in (project / "models").iterdir()) == ["generator.pt"]
    model = load_checkpoint(project / "models" / "generator.pt")
    images = model.sample(4, seed=0)
    assert images.shape == (4, 1, 32, 32) and torch.isfinite(images).all()
    assert not (project / "checkpoints" / "train").exists()
    metrics = (project / "metrics" / "train" / "plots" / "metrics" / "d_loss_step.tsv").read_text()
    assert metrics.splitlines()[0] == "step\td_loss_step" and len(metrics.splitlines()) > 1


def test_ddp_config_names_devices_nodes_and_the_strategy() -> None:
    cfg = compose_config("trainer=ddp", "trainer.num_nodes=4").trainer
    assert (cfg.strategy, cfg.devices, cfg.num_nodes) == ("ddp_find_unused_parameters_true", 2, 4)
