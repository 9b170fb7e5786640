import { nonmonoTrigger } from "../pipeline/ntasgd.ts";

Deno.test("nonmonoTrigger follows a scripted validation-loss sequence (n = 5)", () => {
  // Losses improve for 4 epochs, then plateau just above the best. The trigger compares the
  // current loss with the best loss recorded more than 5 epochs earlier, before appending it.
  const losses = [6.0, 5.0, 4.5, 4.2, 4.3, 4.25, 4.21, 4.4, 4.19, 4.6];
  const fired: number[] = [];
  const history: number[] = [];
  for (const [epoch, v] of losses.entries()) {
    if (nonmonoTrigger(history, v, 5)) fired.push(epoch);
    history.push(v);
  }
  // epoch 5: history has 5 entries (not > 5) → no. epoch 6: min(h[0..0]) = 6.0, 4.21 < 6 → no.
  // epoch 7: min(h[0..1]) = 5.0, 4.4 < 5 → no. epoch 8: min(h[0..2]) = 4.5, 4.19 → no.
  // epoch 9: min(h[0..3]) = 4.2, 4.6 > 4.2 → fires.
  if (fired.join() !== "9") throw new Error(`fired at epochs [${fired}], expected [9]`);
});

Deno.test("nonmonoTrigger never fires while the history is too short, and rejects bad n", () => {
  if (nonmonoTrigger([1, 1, 1], 100, 3)) throw new Error("fired with len == n");
  if (!nonmonoTrigger([1, 1, 1, 1], 100, 3)) throw new Error("did not fire with len > n");
  if (nonmonoTrigger([1, 1, 1, 1], 1, 3)) throw new Error("fired on an equal loss");
  try {
    nonmonoTrigger([], 1, -1);
  } catch (e) {
    if (e instanceof RangeError) return;
    throw e;
  }
  throw new Error("negative n accepted");
});
