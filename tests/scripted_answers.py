"""A test-only callback, loaded by class path (`--trainer.callbacks+=tests.scripted_answers.ScriptedAnswers`), that
replaces the module's generations with scripted ones, so that a test of a run in several processes knows the
accuracy it must report."""

from lightning.pytorch.callbacks import Callback

from longdiv.data.problems import Problem


class ScriptedAnswers(Callback):
    """Each rank answers the first `right[rank]` test problems it evaluates with their right remainder and the rest
    with a wrong one, in the format's own completion text.

    Args:
        right: The number of right answers on each rank, by rank.
    """

    def __init__(self, right: list[int]):
        self.right = right

    def on_test_start(self, trainer, pl_module):
        left = [self.right[trainer.global_rank]]

        def generate(input_ids, attention_mask, max_new_tokens, votes=1, seed=0, context=None, seeds=None):
            texts = []
            for problem in self.problems:
                # A problem whose remainder is the right one plus one: a wrong answer that still parses.
                wrong = Problem(problem.remainder + 1, problem.remainder + 2, problem.question)
                texts += [pl_module.format.render(problem if left[0] > 0 else wrong)[1]] * votes
                left[0] -= 1
            return texts

        pl_module.generate = generate

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.problems = batch["problems"]
