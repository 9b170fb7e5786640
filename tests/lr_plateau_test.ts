import { deepStrictEqual as equal } from "node:assert/strict";
import { plateauScale } from "../pipeline/lr_plateau.ts";
import { epochLr } from "../pipeline/run/settings.ts";
import { trainConfig } from "../pipeline/config.ts";

/**
 * PyTorch's ReduceLROnPlateau(mode="min", factor, patience, threshold=0, cooldown=0) stepped
 * once per value, written as the scheduler's own state machine (best, bad-epoch counter).
 */
function torchTrace(values: number[], factor: number, patience: number): number[] {
  let best = Infinity, bad = 0, lr = 1;
  return values.map((v) => {
    if (v < best * (1 - 0)) (best = v, bad = 0);
    else bad += 1;
    if (bad > patience) (lr *= factor, bad = 0);
    return lr;
  });
}

Deno.test("lr plateau: ReduceLROnPlateau's rate after each epoch, from the history alone", () => {
  const losses = [5, 4.5, 4.6, 4.5, 4.7, 4.4, 4.4, 4.4, 4.4, 4.41, 4.39, 4.5, 4.5, 4.5];
  for (const patience of [0, 1, 2, 3]) {
    const want = torchTrace(losses, 0.5, patience);
    const got = losses.map((_, e) =>
      plateauScale(losses.slice(0, e + 1), { factor: 0.5, patience })
    );
    equal(got, want, `patience ${patience}`);
  }
  // equal is not better (threshold 0): 3 epochs level with the best after patience 2 halve it
  equal(plateauScale([4, 4, 4, 4], { factor: 0.5, patience: 2 }), 0.5);
  equal(plateauScale([4, 4, 4], { factor: 0.5, patience: 2 }), 1);
  equal(plateauScale([4, 4, 4, 4], { factor: 0, patience: 2 }), 1, "0 = off");
  // a run's rate: --lr reduced on the history so far; off by default
  const c = trainConfig({ lr: 1e-3, "lr-plateau": 0.5, "lr-plateau-patience": 1 });
  equal(epochLr(c, [3, 3, 3]), 5e-4);
  equal(epochLr({ ...c, lrPlateau: 0 }, [3, 3, 3]), 1e-3);
  equal(trainConfig({}).lrPlateau, 0);
});
