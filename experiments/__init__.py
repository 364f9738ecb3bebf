"""The research runs and the analyses that read them. Each script runs from the repository root as
`python -m experiments.<name>` and writes its report under reports/:

- `main`: the main job (`make main`), reports/main.json;
- `formats`, `demos`, `recipe`: points of the main recipe (formats at N=200, demonstration counts, recipe variants)
  run through `runner`, each tested on generated problems and on the paper's validation problems;
- `model_size`: the model-size axis (SmolLM2, Gemma 3 270M) and its screens;
- `ablation`: the grid of configs/sweeps/demos.yaml through `python -m longdiv sweep`, then `python -m longdiv report`;
- `length`, `small_n`: ideas screened against dividends longer than any demonstration and at small N, and the
  length benchmark; `self_improve`: rounds of a checkpoint trained on its own filtered traces;
- `paper`: the paper's grid format trained until its probe stops improving (the learning curve);
- `gpu`: what a lent GPU machine runs in its time budget, and the collection of what it brings back;

`runner` is their library: run a point (fit, then test on the paper's file), its report row (longdiv.report's one
schema), and the atomic report merge. The answered one-off analyses were retired; their reports stay, and
docs/usage.md names the commit that holds their code.

Only `ablation` is a grid, and it already is a sweep config with a thin script that runs two slices of it and the
report. The other runs stay scripts because a sweep cannot express them: each point is a fit followed by a second
test of its checkpoint on the paper's file (`paper_val/`), points are chosen one by one rather than as a product,
and the reports keep committed records of runs whose folders are elsewhere.
"""
