/* derive's descent in the browser: the numbers as Python and NumPy compute them, torch.optim's
 * update rules (as derive/core/optimizers.py writes them, from torch 2.13), the descent loop of
 * derive/core/descend.py, and the facts stage of derive/core/facts.py, with its definitions and
 * its noise floors. No page, no drawing: window.deriveDescent is used by the lesson's panel.
 */
(function () {
  "use strict";

  // -- numbers as Python's math and NumPy compute them ---------------------------------------

  /* a·b as an unevaluated sum hi + lo, exactly (Dekker's product with Veltkamp's split). */
  function twoProduct(a, b) {
    const hi = a * b;
    const split = 134217729; // 2^27 + 1
    const ca = split * a, cb = split * b;
    const ah = ca - (ca - a), al = a - ah;
    const bh = cb - (cb - b), bl = b - bh;
    return [hi, ((ah * bh - hi) + ah * bl + al * bh) + al * bl];
  }

  function twoSum(a, b) {
    const s = a + b;
    const v = s - a;
    return [s, (a - (s - v)) + (b - v)];
  }

  function ddTimes(x, y) {
    const [hi, lo] = twoProduct(x[0], y[0]);
    return twoSum(hi, lo + (x[0] * y[1] + x[1] * y[0]));
  }

  /* x^k for a whole k, correctly rounded but in rare ties, as glibc's pow nearly always is
   * (V8's Math.pow is off by an ulp for one x in ten at k = 3). Squared halves in double-double;
   * outside the range where that is exact, Math.pow. */
  function wholePower(x, k) {
    if (k === 0) return 1;
    if (k === 1) return x;
    if (k === 2) return x * x;
    const size = Math.abs(x);
    const m = Math.abs(k);
    if (!(size > 1e-150 && size < 1e150) || m > 64) return Math.pow(x, k);
    let result = [1, 0];
    let base = [x, 0];
    for (let e = m; e > 0; e >>= 1) {
      if (e & 1) result = ddTimes(result, base);
      if (e > 1) base = ddTimes(base, base);
    }
    if (!isFinite(result[0]) || result[0] === 0) return Math.pow(x, k);
    if (k > 0) return result[0] + result[1];
    // 1 / (hi + lo): the quotient, then one correction from the exact remainder
    const q = 1 / result[0];
    const [p, e] = twoProduct(q, result[0]);
    return q + (((1 - p) - e) - q * result[1]) / result[0];
  }

  function power(x, y) {
    return Number.isInteger(y) ? wholePower(x, y) : Math.pow(x, y);
  }

  /* NumPy's sum of a float64 array: pairwise, in blocks of 8 below 128 values
   * (numpy/_core/src/umath/loops_utils.h.src), added to the identity 0. */
  function pairwise(values, start, count) {
    if (count < 8) {
      let total = 0;
      for (let i = 0; i < count; i++) total += values[start + i];
      return total;
    }
    if (count <= 128) {
      const r = new Float64Array(8);
      for (let j = 0; j < 8; j++) r[j] = values[start + j];
      let i = 8;
      for (; i < count - (count % 8); i += 8) {
        for (let j = 0; j < 8; j++) r[j] += values[start + i + j];
      }
      let total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      for (; i < count; i++) total += values[start + i];
      return total;
    }
    let half = Math.floor(count / 2);
    half -= half % 8;
    return pairwise(values, start, half) + pairwise(values, start + half, count - half);
  }

  function rows(n, row) {
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = row(i);
    return values;
  }

  function sign(x) {
    return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN;
  }

  /* math.fsum: the correctly rounded sum (Shewchuk's partials, as CPython's mathmodule.c). */
  function fsum(values) {
    const partials = [];
    for (let x of values) {
      let i = 0;
      for (let y of partials) {
        if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
        const hi = x + y;
        const lo = y - (hi - x);
        if (lo) partials[i++] = lo;
        x = hi;
      }
      partials.length = i;
      partials.push(x);
    }
    let n = partials.length;
    if (!n) return 0;
    let hi = partials[--n], lo = 0;
    while (n > 0) {
      const x = hi, y = partials[--n];
      hi = x + y;
      lo = y - (hi - x);
      if (lo) break;
    }
    if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
      const y = lo * 2, x = hi + y;
      if (y === x - hi) hi = x;
    }
    return hi;
  }

  /* NumPy's elementwise maximum and minimum: a NaN on either side wins. */
  const npMax = (a, b) => (a !== a || b !== b ? NaN : a >= b ? a : b);
  const npMin = (a, b) => (a !== a || b !== b ? NaN : a <= b ? a : b);
  /* Python's max(...) and min(...): the first argument, replaced by each one beyond it. */
  const pyMaxOf = (...values) => values.reduce((m, v) => (v > m ? v : m));
  const pyMinOf = (...values) => values.reduce((m, v) => (v < m ? v : m));
  /* A plain left-to-right sum from 0, as Python's sum() of NumPy arrays. */
  const added = (values) => values.reduce((total, v) => total + v, 0);

  /* Math's functions that NumPy and Python's math share, under both modules' names. */
  const MATH = {
    sqrt: Math.sqrt, exp: Math.exp, log: Math.log, log1p: Math.log1p, expm1: Math.expm1,
    log2: Math.log2, log10: Math.log10, cbrt: Math.cbrt, sin: Math.sin, cos: Math.cos,
    tan: Math.tan, asin: Math.asin, acos: Math.acos, atan: Math.atan, sinh: Math.sinh,
    cosh: Math.cosh, tanh: Math.tanh, asinh: Math.asinh, acosh: Math.acosh, atanh: Math.atanh,
  };

  /* NumPy (and derive's array helpers in core/numeric.py): overflow gives ∞, a domain error NaN. */
  const np = {
    ...MATH,
    pow: power,
    sign: sign,
    heaviside: (u, atZero) => (u < 0 ? 0 : u > 0 ? 1 : u === 0 ? atZero : NaN),
    relu: (u) => npMax(u, 0),
    leaky_relu: (z, a) => (z > 0 ? z : a * z),
    huber: (u, delta) => (Math.abs(u) <= delta ? 0.5 * u * u : delta * (Math.abs(u) - 0.5 * delta)),
    maximum: (...values) => values.reduce(npMax),
    minimum: (...values) => values.reduce(npMin),
    tie_share(mine, ...others) {
      const top = others.reduce(npMax);
      const ties = others.filter((o) => o === mine).length;
      return mine > top ? 1 : mine < top ? 0 : 1 / (1 + ties);
    },
    logsumexp(...z) {
      const top = z.reduce(npMax);
      return top + Math.log(added(z.map((v) => Math.exp(v - top))));
    },
    softmax(k, ...z) {
      const top = z.reduce(npMax);
      const shifted = z.map((v) => Math.exp(v - top));
      return shifted[k - 1] / added(shifted);
    },
    exp_neg_abs: (u) => Math.exp(-Math.abs(u)),
    sigmoid_given: (u, e) => (u >= 0 ? 1 : e) / (1 + e),
    sigmoid: (z) => 1 / (1 + Math.exp(-z)),
    softplus: (z) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))),
    rows: rows,
    rowsum: (n, row) => 0 + pairwise(rows(n, row), 0, n),
    /* The Hessian by central differences of the gradient, as core/numeric.py's _differenced:
     * H[j][k] = (∂ₖL(p + h eⱼ) − ∂ₖL(p − h eⱼ)) / 2h, h = 1e-5 · max(1, |pⱼ|). */
    differenced: (gradient, width) => (...values) => {
      const params = values.slice(0, width), rest = values.slice(width);
      return params.map((p, j) => {
        const step = 1e-5 * npMax(1, Math.abs(p));
        const moved = (by) => params.map((q, m) => (m === j ? q + by : q));
        const above = gradient(...moved(step), ...rest).slice(1);
        const below = gradient(...moved(-step), ...rest).slice(1);
        return above.map((a, m) => (a - below[m]) / (2 * step));
      });
    },
  };

  /* Python's floats and math: an overflow or a domain error raises, and derive's descent then
   * records the loss and gradient there as NaN (core/descend.py, _plain_on_floats). */
  class Undefined extends Error {}

  /* math's rule: a result that is not finite from finite arguments raised (ValueError for a
   * domain error or a pole, OverflowError past the largest float). */
  function checked(value, ...inputs) {
    if (!isFinite(value) && inputs.every(isFinite)) throw new Undefined();
    return value;
  }

  const raising = Object.fromEntries(
    Object.entries(MATH).map(([name, f]) => [name, (x) => checked(f(x), x)]),
  );

  const py = {
    ...raising,
    pow(x, y) {
      if (x === 0 && y < 0) throw new Undefined(); // ZeroDivisionError
      if (x < 0 && !Number.isInteger(y) && isFinite(y)) throw new Undefined(); // complex
      return checked(power(x, y), x, y);
    },
    tanh: Math.tanh, // finite for every float: math.tanh never raises
    cbrt: Math.cbrt, // likewise
    sign: (x) => (x === 0 ? 0 : x < 0 || Object.is(x, -0) ? -1 : 1),
    // derive's SCALAR_FUNCTIONS (core/numeric.py), as Python computes them
    sigmoid: (z) => 0.5 * (1 + Math.tanh(0.5 * z)),
    softplus: (z) => (0 > z ? 0 : z) + py.log1p(py.exp(-Math.abs(z))),
    relu: (u) => (0 > u ? 0 : u),
    leaky_relu: (z, a) => (z > 0 ? z : a * z),
    huber: (u, delta) => (Math.abs(u) <= delta ? 0.5 * u * u : delta * (Math.abs(u) - 0.5 * delta)),
    maximum: pyMaxOf,
    minimum: pyMinOf,
    tie_share(mine, ...others) {
      const top = pyMaxOf(...others);
      if (mine !== top) return mine > top ? 1 : 0;
      return 1 / (1 + others.filter((o) => o === mine).length);
    },
    logsumexp(...z) {
      const top = pyMaxOf(...z);
      if (top === Infinity || top === -Infinity) return top;
      return top + py.log(fsum(z.map((v) => py.exp(v - top))));
    },
    softmax(k, ...z) {
      const top = pyMaxOf(...z);
      const shifted = z.map((v) => py.exp(v - top));
      return shifted[k - 1] / fsum(shifted);
    },
  };

  // -- torch.optim's update rules (derive/core/optimizers.py) ---------------------------------

  /* torch.lerp: two formulas, chosen by the weight, each exact at its own end. */
  function lerp(start, end, weight) {
    if (Math.abs(weight) < 0.5) return start + weight * (end - start);
    return end - (end - start) * (1 - weight);
  }

  const map = (values, f) => values.map((v, j) => f(v, j));

  const RULES = {
    /* torch.optim.SGD, _single_tensor_sgd */
    sgd(params, grad, state, step, o) {
      grad = o.maximize ? map(grad, (g) => -g) : grad;
      if (o.weight_decay !== 0) grad = map(grad, (g, j) => g + o.weight_decay * params[j]);
      let direction = grad;
      if (o.momentum !== 0) {
        const buf = state.momentum_buffer;
        const next = buf === undefined
          ? grad
          : map(buf, (b, j) => b * o.momentum + (1 - o.dampening) * grad[j]);
        state.momentum_buffer = next;
        direction = o.nesterov ? map(grad, (g, j) => g + o.momentum * next[j]) : next;
      }
      return map(params, (p, j) => p - o.lr * direction[j]);
    },

    /* torch.optim.Adam, _single_tensor_adam */
    adam(params, grad, state, step, o) {
      if (step === 1) {
        state.exp_avg = params.map(() => 0);
        state.exp_avg_sq = params.map(() => 0);
        if (o.amsgrad) state.max_exp_avg_sq = params.map(() => 0);
      }
      const [beta1, beta2] = o.betas;
      grad = o.maximize ? map(grad, (g) => -g) : grad;
      if (o.weight_decay !== 0) {
        if (o.decoupled_weight_decay) params = map(params, (p) => p * (1 - o.lr * o.weight_decay));
        else grad = map(grad, (g, j) => g + o.weight_decay * params[j]);
      }
      state.exp_avg = map(state.exp_avg, (m, j) => lerp(m, grad[j], 1 - beta1));
      state.exp_avg_sq = map(state.exp_avg_sq, (v, j) => v * beta2 + (1 - beta2) * grad[j] * grad[j]);
      const biasCorrection1 = 1 - wholePower(beta1, step);
      const biasCorrection2 = 1 - wholePower(beta2, step);
      const stepSize = o.lr / biasCorrection1;
      const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
      let second = state.exp_avg_sq;
      if (o.amsgrad) {
        state.max_exp_avg_sq = map(state.max_exp_avg_sq, (m, j) => Math.max(m, second[j]));
        second = state.max_exp_avg_sq;
      }
      const denom = map(second, (v) => Math.sqrt(v) / biasCorrection2Sqrt + o.eps);
      return map(params, (p, j) => p - stepSize * state.exp_avg[j] / denom[j]);
    },
  };

  // torch's defaults (derive's for sgd's lr), as DEFAULTS in derive/core/optimizers.py
  const DEFAULTS = {
    sgd: { lr: 0.1, momentum: 0, dampening: 0, weight_decay: 0, nesterov: false, maximize: false },
    adam: {
      lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false,
      maximize: false, decoupled_weight_decay: false,
    },
  };

  function options(settings) {
    const name = settings.optimizer || "sgd";
    if (!(name in DEFAULTS)) throw new Error(`unknown optimizer ${name} (known: sgd, adam)`);
    const chosen = { ...DEFAULTS[name] };
    for (const key of Object.keys(chosen)) {
      if (settings[key] !== undefined && settings[key] !== null) chosen[key] = settings[key];
    }
    if (!(chosen.lr > 0)) throw new Error(`the learning rate must be positive, not ${chosen.lr}`);
    if (name === "sgd" && chosen.nesterov && (chosen.momentum <= 0 || chosen.dampening !== 0)) {
      throw new Error("nesterov needs a positive momentum and zero dampening (as in torch)");
    }
    for (const beta of chosen.betas || []) {
      if (!(beta >= 0 && beta < 1)) throw new Error(`betas must lie in [0, 1), not ${beta}`);
    }
    return { name, options: chosen };
  }

  // -- the descent (derive/core/descend.py) ---------------------------------------------------

  /* Loss and gradient at p: [loss, g...]; NaN everywhere where Python's math raised. */
  function evaluator(problem, floats) {
    if (floats) {
      return (p) => {
        try {
          return problem.functions.scalar(...p);
        } catch (error) {
          if (error instanceof Undefined) return p.map(() => NaN).concat([NaN]);
          throw error;
        }
      };
    }
    const extra = extraOf(problem);
    return (p) => problem.functions.array(...p, ...extra);
  }

  /* The data columns and their length n, the arguments after the parameters. */
  const prepared = new WeakMap();
  function extraOf(problem) {
    if (!prepared.has(problem)) {
      const columns = problem.columns.map((c) => Float64Array.from(c));
      prepared.set(problem, columns.length ? [...columns, columns[0].length] : []);
    }
    return prepared.get(problem);
  }

  /* The run as `derive descend --json` records it: steps + 1 entries {t, params, loss, grad,
   * lr} (fewer when a number stopped being finite: that entry is the last). */
  function run(problem, settings) {
    const { name, options: o } = options(settings);
    const steps = settings.steps === undefined ? problem.steps : settings.steps;
    if (!(Number.isInteger(steps) && steps >= 0)) throw new Error(`steps must be a whole number ≥ 0`);
    let p = problem.params.map((key, j) => {
      const value = settings.start && key in settings.start ? settings.start[key] : problem.start[j];
      return Number(value);
    });
    // plain descent on a loss without data runs on Python floats (_plain_on_floats)
    const plain = name === "sgd" && !o.momentum && !o.weight_decay && !o.maximize;
    const evaluate = evaluator(problem, plain && problem.scalar);
    const rule = RULES[name];
    const state = {};
    const entries = [];
    for (let t = 0; t <= steps; t++) {
      const [loss, ...grad] = evaluate(p).map(Number);
      entries.push({ t, params: p, loss, grad, lr: o.lr });
      if (!isFinite(loss) || !grad.every(isFinite) || !p.every(isFinite)) break;
      if (t === steps) break;
      p = rule(p, grad, state, t + 1, o);
    }
    return entries;
  }

  // -- linear algebra for k × k symmetric matrices ------------------------------------------

  /* Eigenvalues and eigenvectors (columns) by Jacobi's rotations. */
  function eigen(matrix) {
    const k = matrix.length;
    const a = matrix.map((row) => row.slice());
    const v = a.map((row, i) => row.map((_, j) => (i === j ? 1 : 0)));
    for (let sweep = 0; sweep < 100; sweep++) {
      let off = 0;
      for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) off += a[i][j] * a[i][j];
      if (off === 0 || !isFinite(off)) break;
      for (let p = 0; p < k; p++) {
        for (let q = p + 1; q < k; q++) {
          if (a[p][q] === 0) continue;
          const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
          const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
          const c = 1 / Math.sqrt(t * t + 1), s = t * c;
          for (let r = 0; r < k; r++) {
            const arp = a[r][p], arq = a[r][q];
            a[r][p] = c * arp - s * arq;
            a[r][q] = s * arp + c * arq;
          }
          for (let r = 0; r < k; r++) {
            const apr = a[p][r], aqr = a[q][r];
            a[p][r] = c * apr - s * aqr;
            a[q][r] = s * apr + c * aqr;
          }
          for (let r = 0; r < k; r++) {
            const vrp = v[r][p], vrq = v[r][q];
            v[r][p] = c * vrp - s * vrq;
            v[r][q] = s * vrp + c * vrq;
          }
        }
      }
    }
    return { values: a.map((row, i) => row[i]), vectors: v };
  }

  /* The largest singular value of a symmetric matrix: np.linalg.norm(matrix, 2). */
  function spectral(matrix) {
    return Math.max(...eigen(matrix).values.map(Math.abs));
  }

  /* matrix⁻¹ · vector by Gaussian elimination with partial pivoting. */
  function solve(matrix, vector) {
    const k = vector.length;
    const a = matrix.map((row, i) => [...row, vector[i]]);
    for (let c = 0; c < k; c++) {
      let pivot = c;
      for (let r = c + 1; r < k; r++) if (Math.abs(a[r][c]) > Math.abs(a[pivot][c])) pivot = r;
      [a[c], a[pivot]] = [a[pivot], a[c]];
      for (let r = c + 1; r < k; r++) {
        const f = a[r][c] / a[c][c];
        for (let j = c; j <= k; j++) a[r][j] -= f * a[c][j];
      }
    }
    const x = new Array(k).fill(0);
    for (let r = k - 1; r >= 0; r--) {
      let s = a[r][k];
      for (let j = r + 1; j < k; j++) s -= a[r][j] * x[j];
      x[r] = s / a[r][r];
    }
    return x;
  }

  function determinant(matrix) {
    const k = matrix.length;
    const a = matrix.map((row) => row.slice());
    let det = 1;
    for (let c = 0; c < k; c++) {
      let pivot = c;
      for (let r = c + 1; r < k; r++) if (Math.abs(a[r][c]) > Math.abs(a[pivot][c])) pivot = r;
      if (pivot !== c) {
        [a[c], a[pivot]] = [a[pivot], a[c]];
        det = -det;
      }
      det *= a[c][c];
      if (a[c][c] === 0) return 0;
      for (let r = c + 1; r < k; r++) {
        const f = a[r][c] / a[c][c];
        for (let j = c; j < k; j++) a[r][j] -= f * a[c][j];
      }
    }
    return det;
  }

  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const minus = (a, b) => a.map((x, j) => x - b[j]);
  const allFinite = (v) => v.every(isFinite);

  // -- the facts stage (derive/core/facts.py) ------------------------------------------------

  const CONVERGED = 1e-6; // within this fraction of the starting distance: converged
  const NOISE = 1e-12; // relative size of float noise in parameters and gradients
  const LOSS_NOISE = 1e-24; // ... in a loss near its minimum
  const SWING = 1e-6; // swings that change by less than this fraction neither grow nor shrink
  const LONGEST_CYCLE = 8;

  function hessianAt(problem, point) {
    const matrix = problem.functions.hessian(...point, ...extraOf(problem)).map((row) => row.map(Number));
    return matrix.every(allFinite) ? matrix : null;
  }

  /* The noise floors of this run's problem: facts.problem, from its start and the minima. */
  function resolutionOf(problem, start, startLoss, startGradient) {
    let scale = norm(start);
    let lossScale = Math.abs(startLoss);
    const slope = isFinite(startGradient) ? Math.abs(startGradient) : 0;
    const minima = problem.landscape.points.filter((p) => p.kind === "minimum");
    for (const point of minima) {
      scale = pyMaxOf(scale, norm(point.values));
      scale = pyMaxOf(scale, norm(minus(start, point.values)));
      lossScale = pyMaxOf(lossScale, Math.abs(point.loss), Math.abs(startLoss - point.loss));
    }
    scale = pyMaxOf(scale, 1e-300);
    lossScale = pyMaxOf(lossScale, 1e-300);
    let curvature = 0;
    for (const point of minima) {
      curvature = pyMaxOf(curvature, point.curvature.reduce((m, c) => pyMaxOf(m, Math.abs(c)), 0));
    }
    const resolution = {
      params: NOISE * scale,
      loss: LOSS_NOISE * lossScale,
      gradient: NOISE * pyMaxOf(slope, curvature * scale, 1e-300),
    };
    resolution.lossNoise = (a, b, s) =>
      NOISE * pyMaxOf(Math.abs(a), Math.abs(b)) + resolution.loss + Math.abs(s) * resolution.params;
    return resolution;
  }

  /* The minimum the run is measured against: the nearest known one to where it ended, or for
   * a loss over data without one, the one Newton's method reaches from there (landscape.refine). */
  function reference(problem, end) {
    let minima = problem.landscape.points.filter((p) => p.kind === "minimum");
    if (!minima.length && problem.columns.length && allFinite(end)) {
      const found = refine(problem, end);
      minima = found && found.kind === "minimum" ? [found] : [];
    }
    if (!minima.length) return null;
    let best = minima[0];
    for (const point of minima) {
      if (norm(minus(point.values, end)) < norm(minus(best.values, end))) best = point;
    }
    return best;
  }

  function refine(problem, start) {
    const values = evaluator(problem, false);
    let point = start.slice();
    for (let iteration = 0; iteration < 60; iteration++) {
      const gradient = values(point).slice(1);
      const matrix = problem.functions.hessian(...point, ...extraOf(problem));
      if (!allFinite(gradient) || !matrix.every(allFinite)) return null;
      if (Math.abs(determinant(matrix)) < 1e-300) matrix.forEach((row, i) => (row[i] += 1e-12));
      point = minus(point, solve(matrix, gradient));
    }
    const gradient = values(point).slice(1);
    const size = norm(gradient);
    if (!(isFinite(size) && size < 1e-8)) return null;
    const [loss] = values(point);
    const matrix = hessianAt(problem, point);
    if (!isFinite(loss) || !allFinite(gradient) || matrix === null) return null;
    return { values: point, kind: kindOf(eigen(matrix).values), loss, curvature: [] };
  }

  function kindOf(curvature) {
    const tolerance = 1e-9 * Math.max(1, ...curvature.map(Math.abs));
    if (curvature.every((c) => c > tolerance)) return "minimum";
    if (curvature.every((c) => c < -tolerance)) return "maximum";
    if (curvature.some((c) => c > tolerance) && curvature.some((c) => c < -tolerance)) return "saddle";
    return "degenerate";
  }

  function lossChanges(losses, slopes, resolution) {
    let increases = 0, decreases = 0;
    for (let t = 0; t + 1 < losses.length; t++) {
      const before = losses[t], after = losses[t + 1];
      const slope = Math.max(slopes[t], slopes[t + 1]);
      const noise = NOISE * Math.max(Math.abs(before), Math.abs(after))
        + resolution.loss + slope * resolution.params;
      const change = after - before;
      if (change > noise) increases++;
      if (change < -noise) decreases++;
    }
    return [increases, decreases];
  }

  /* Steps (t → t+1) that crossed the minimiser along an eigendirection of the Hessian there,
   * both ends in the quadratic region: one array of booleans per eigendirection. */
  function crossings(problem, params, pstar, resolution) {
    const matrix = hessianAt(problem, pstar);
    if (matrix === null) return [];
    const { vectors } = eigen(matrix);
    const k = pstar.length;
    const local = quadraticRegion(problem, params, pstar, matrix);
    const coordinates = params.map((p) => {
      const d = minus(p, pstar);
      return vectors[0].map((_, j) => d.reduce((s, x, r) => s + x * vectors[r][j], 0));
    });
    const steps = [];
    for (let t = 0; t + 1 < params.length; t++) {
      const row = [];
      for (let j = 0; j < k; j++) {
        const a = coordinates[t][j], b = coordinates[t + 1][j];
        const visible = Math.abs(a) > resolution.params && Math.abs(b) > resolution.params;
        row.push(Math.sign(a) !== Math.sign(b) && visible && local[t] && local[t + 1]);
      }
      steps.push(row);
    }
    return steps;
  }

  function quadraticRegion(problem, params, pstar, matrix) {
    if (problem.landscape.quadratic) return params.map(() => true);
    const distances = params.map((p) => norm(minus(p, pstar)));
    const order = distances.map((_, t) => t).sort((a, b) => distances[a] - distances[b]);
    const probes = [...new Set(
      Array.from({ length: 40 }, (_, j) => Math.round(j * ((order.length - 1) / 39))),
    )].sort((a, b) => a - b).map((j) => order[j]);
    const size = spectral(matrix);
    let radius = Infinity;
    for (const index of probes) {
      const other = hessianAt(problem, params[index]);
      if (other === null || spectral(other.map((row, i) => minus(row, matrix[i]))) > 0.5 * size) {
        radius = distances[index];
        break;
      }
    }
    return distances.map((d) => d < radius);
  }

  function swings(distances, firstSwing) {
    const swinging = distances.length - firstSwing >= 2 ? distances.slice(firstSwing) : distances;
    const third = Math.max(1, Math.ceil(swinging.length / 3));
    const first = Math.max(...swinging.slice(0, third));
    const last = Math.max(...swinging.slice(-third));
    if (last > first * (1 + SWING) && distances[distances.length - 1] > distances[0]) return "diverges";
    if (last < first * (1 - SWING)) return "overshoots";
    return "oscillating";
  }

  function periodOf(params, resolution) {
    for (let k = 2; k <= LONGEST_CYCLE; k++) {
      const span = 3 * k;
      if (params.length <= span) return null;
      const tail = params.slice(Math.max(0, params.length - span - k));
      let repeats = true;
      for (let t = k; t < tail.length && repeats; t++) {
        repeats = norm(minus(tail[t], tail[t - k])) <= resolution.params;
      }
      if (repeats) return k;
    }
    return null;
  }

  function headsOff(params, losses, problem, resolution) {
    if (params.length < 3) return false;
    const third = Math.max(1, Math.floor(losses.length / 3));
    const earlier = losses.length - 1 - third;
    const last = losses[losses.length - 1];
    const falling = last < losses[earlier] - resolution.lossNoise(last, losses[earlier], 0);
    if (!falling) return false;
    const points = problem.landscape.points;
    if (!points.length) return true;
    const end = params[params.length - 1];
    let nearest = points[0];
    for (const p of points) if (norm(minus(p.values, end)) < norm(minus(nearest.values, end))) nearest = p;
    return norm(minus(end, nearest.values)) >= norm(minus(params[earlier], nearest.values));
  }

  /* The facts of one run (core/facts.py, measure): its shape in the lesson's vocabulary, whether
   * it converged, its crossings, loss rises, period. */
  function facts(problem, entries) {
    const value = (x) => (x === null || x === undefined ? NaN : x);
    const params = entries.map((e) => e.params.map(value));
    const losses = entries.map((e) => value(e.loss));
    const grads = entries.map((e) => e.grad.map(value));
    const diverged = !(isFinite(losses[losses.length - 1]) && allFinite(grads[grads.length - 1])
      && allFinite(params[params.length - 1]));
    const startGradient = allFinite(grads[0]) ? norm(grads[0]) : 0;
    const resolution = resolutionOf(problem, params[0], losses[0], startGradient);
    const placed = params.map(allFinite);
    const finite = placed.map((ok, t) => ok && isFinite(losses[t]));
    const last = Math.max(0, finite.lastIndexOf(true));
    const located = Math.max(0, placed.lastIndexOf(true));
    const kept = params.slice(0, last + 1);
    const minimum = reference(problem, params[last]);
    const pstar = minimum ? minimum.values : null;
    const moves = kept.slice(1).map((p, t) => norm(minus(p, kept[t])));
    const slopes = grads.slice(0, last + 1).map(norm);
    const [increases, decreases] = lossChanges(losses.slice(0, last + 1), slopes, resolution);
    const off = headsOff(kept, losses.slice(0, last + 1), problem, resolution);
    const common = {
      loss_increases: increases,
      loss_decreases: decreases,
      minimiser: pstar,
      unbounded_below: problem.landscape.minimum === "unbounded_below" && off,
      steps: entries.length - 1,
      resolution,
    };
    const firstGradient = finite[0] ? norm(grads[0]) : Infinity;
    if (firstGradient <= resolution.gradient && Math.max(0, ...moves) <= resolution.params) {
      const atMinimum = pstar !== null && norm(minus(params[0], pstar)) <= resolution.params;
      return { shape: "stationary_start", converged: atMinimum, converged_at: atMinimum ? 0 : null,
        crossings: 0, period: null, ...common };
    }
    if (pstar === null) {
      const third = Math.max(1, Math.ceil(moves.length / 3));
      const growing = moves.length >= 2
        && Math.max(...moves.slice(-third)) > Math.max(...moves.slice(0, third)) * (1 + SWING);
      let shape = "oscillating";
      if (diverged || growing || (increases && off)) shape = "diverges";
      else if (increases === 0) shape = "monotone";
      return { shape, converged: false, converged_at: null, crossings: 0, period: null, ...common };
    }
    const distances = kept.map((p) => norm(minus(p, pstar)));
    const tolerance = Math.max(CONVERGED * distances[0], resolution.params);
    let period = periodOf(kept, resolution);
    if (period !== null && Math.max(...distances.slice(-2 * period)) <= tolerance) period = null;
    let lastOutside = -1;
    distances.forEach((d, t) => { if (d > tolerance) lastOutside = t; });
    const convergedAt = lastOutside + 1;
    const converged = !diverged && period === null && convergedAt <= last;
    const byStep = crossings(problem, params.slice(0, located + 1), pstar, resolution);
    const crossed = byStep.map((row) => row.some(Boolean));
    const count = crossed.filter(Boolean).length;
    let shape;
    if (diverged) shape = "diverges";
    else if (period !== null) shape = "cycle";
    else if (count === 0 && increases === 0) shape = "monotone";
    else {
      const first = crossed.indexOf(true);
      shape = swings(distances, first >= 0 ? first + 1 : 0);
    }
    return { shape, converged, converged_at: converged ? convergedAt : null, crossings: count,
      period, final_distance: diverged ? null : distances[distances.length - 1], ...common };
  }

  window.deriveDescent = { run, facts, runtime: { py, np } };
})();
