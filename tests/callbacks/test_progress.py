"""Progress lines in logs: a line every few optimizer steps and evaluation batches when the output is no terminal."""

import io
import re

import lightning as L
import torch

from longdiv.callbacks.progress import LogProgress
from longdiv.data.datamodule import DivisionData
from longdiv.models.module import DivisionLM


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(stream, losses=None, **options):
    torch.manual_seed(0)
    module = DivisionLM(model="tiny", format="direct")
    if losses is not None:  # what each micro-batch's training_step returned
        step = module.training_step
        module.training_step = lambda *args: losses.append(float(loss := step(*args))) or loss
    data = DivisionData(format="direct", num_demos=12, num_val=2, num_test=5, tokenizer_name="tiny", batch_size=1,
                        eval_batch_size=2)
    trainer = L.Trainer(accelerator="cpu", max_steps=6, accumulate_grad_batches=2, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0,
                        callbacks=[LogProgress(every_n_steps=2, every_n_batches=2, stream=stream, **options)])
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    return stream.getvalue()


def test_a_log_gets_a_line_every_n_steps_and_eval_batches():
    lines = run(io.StringIO()).splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert [re.match(r"step (\d+)/6 ", line)[1] for line in steps] == ["2", "4", "6"]
    assert all(re.search(r"loss \d+\.\d{4} \d+ tokens/s elapsed \d+:\d\d:\d\d eta \d+:\d\d:\d\d$", s) for s in steps)
    evals = [line for line in lines if line.startswith("test ")]
    # 5 problems in batches of 2: batches 2 and 3 (the last) get a line
    assert [re.match(r"test batch (\d/\d) \((\d) problems\)", line).groups() for line in evals] == [("2/3", "4"),
                                                                                                   ("3/3", "5")]


def test_a_terminal_gets_no_lines_unless_asked():
    assert run(Terminal()) == ""
    assert "step 2/6" in run(Terminal(), always=True)


def test_the_logged_loss_is_the_mean_of_the_micro_batch_losses_whatever_the_accumulation():
    losses = []
    lines = [line for line in run(io.StringIO(), losses).splitlines() if line.startswith("step ")]
    printed = [float(re.search(r"loss (\d+\.\d{4})", line)[1]) for line in lines]
    # a line every 2 optimizer steps of 2 accumulated micro-batches: 4 micro-batches a line
    assert len(losses) == 12
    assert printed == [round(sum(losses[i : i + 4]) / 4, 4) for i in (0, 4, 8)]
