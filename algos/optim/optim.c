/* Gradient optimizers with Optax's update rules (optax/_src/alias.py, transform.py), plus ClipUp (Toklu et al.
   2020, "ClipUp: a simple and powerful optimizer for distribution-based policy evolution", Alg. 1).

   All rules minimise: params <- params - lr_t * u_t, where lr_t is the schedule at the step counter t (0 for the
   first step, as optax.scale_by_schedule counts) and u_t is
     sgd       g
     momentum  m_t = g + mu m_{t-1}; u = m_t                 (optax.trace, nesterov = False)
     nesterov  m_t = g + mu m_{t-1}; u = g + mu m_t          (optax.trace, nesterov = True)
     adam      Adam with bias correction at t + 1: the counter advances on every step (EvoJAX's PGPE passes
               t // decay_steps as Adam's step and so skips the bias correction schedule; we do not unless asked:
               adam_count_every = k corrects at floor(t / k) + 1, EvoJAX's behaviour for k = decay_steps)
     adamw     adam + weight_decay * params (decoupled: not seen by the moments; optax.adamw)
     clipup    v_t = mu v_{t-1} + lr_t g / ||g||, v_t clipped to ||v_t|| <= max_speed, params <- params - v_t
   Gradients are first clipped by global norm when clip_norm > 0 (optax.clip_by_global_norm). Moments are kept in
   double; the parameters stay float so the same optimizer serves the ES updates and gradient training. The
   elementwise rules live in optim_math.h, shared with the CUDA kernels (optim_cuda.cu) that step parameters kept on
   a GPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "optim_math.h"

#define EVO_OPTIM_MAX_STATE 3
#define EVO_OPTIM_PI 3.14159265358979323846
#define EVO_OPTIM_PAR_MIN (1 << 17) /* parameters below which one thread is faster */

struct evo_optim {
  evo_optim_params p;
  int64_t n;
  double *m;    /* momentum trace, Adam first moment, ClipUp velocity */
  double *v;    /* Adam second moment */
  double count; /* steps taken, stored as a double so checkpoints treat every state array alike */
  int n_state;
  const char *names[EVO_OPTIM_MAX_STATE];
  double *data[EVO_OPTIM_MAX_STATE];
  int64_t sizes[EVO_OPTIM_MAX_STATE];
};

static const char *const kind_names[] = {"sgd", "momentum", "nesterov", "adam", "adamw", "clipup"};
#define EVO_OPTIM_KINDS ((int)(sizeof kind_names / sizeof *kind_names))

const char *evo_optim_kind_name(evo_optim_kind kind) {
  return (int)kind >= 0 && (int)kind < EVO_OPTIM_KINDS ? kind_names[kind] : "?";
}

int evo_optim_kind_from_name(const char *name) {
  for (int i = 0; name && i < EVO_OPTIM_KINDS; i++)
    if (strcmp(kind_names[i], name) == 0) return i;
  return -1;
}

evo_optim_params evo_optim_default_params(evo_optim_kind kind) {
  /* Optax has no default learning rates; these are the usual ones: SGD 0.01 (Keras), momentum 0.9 (Sutskever et
     al. 2013), Adam 1e-3 / 0.9 / 0.999 / 1e-8 (Kingma & Ba 2015), AdamW weight decay 1e-4 (optax.adamw),
     ClipUp max_speed 0.15 (EvoJAX PGPE), lr = max_speed / 2 and momentum 0.9 (Toklu et al. 2020, Sec. 3). */
  evo_optim_params p = {.kind = kind, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .adam_count_every = 1,
                        .schedule = EVO_SCHEDULE_CONSTANT, .decay_rate = 1.0, .decay_steps = 1};
  switch (kind) {
  case EVO_OPTIM_MOMENTUM:
  case EVO_OPTIM_NESTEROV: p.momentum = 0.9; break;
  case EVO_OPTIM_ADAM: p.lr = 1e-3; break;
  case EVO_OPTIM_ADAMW: p.lr = 1e-3, p.weight_decay = 1e-4; break;
  case EVO_OPTIM_CLIPUP: p.max_speed = 0.15, p.lr = 0.075, p.momentum = 0.9; break;
  default: break;
  }
  return p;
}

static evo_status check_params(const evo_optim_params *p, int64_t n) {
#define BAD(...) return evo_error(EVO_STATUS_INVALID_ARGUMENT, __VA_ARGS__)
  if ((int)p->kind < 0 || (int)p->kind >= EVO_OPTIM_KINDS) BAD("optim: unknown kind %d", (int)p->kind);
  const char *k = kind_names[p->kind];
  if (n < 1) BAD("optim %s: number of parameters must be > 0, got %lld", k, (long long)n);
  if (!(p->lr >= 0 && isfinite(p->lr))) BAD("optim %s: lr must be finite and >= 0, got %g", k, p->lr);
  if (!(p->momentum >= 0 && p->momentum < 1)) BAD("optim %s: momentum must be in [0, 1), got %g", k, p->momentum);
  if (p->kind == EVO_OPTIM_ADAM || p->kind == EVO_OPTIM_ADAMW) {
    if (!(p->beta1 >= 0 && p->beta1 < 1)) BAD("optim %s: beta1 must be in [0, 1), got %g", k, p->beta1);
    if (!(p->beta2 >= 0 && p->beta2 < 1)) BAD("optim %s: beta2 must be in [0, 1), got %g", k, p->beta2);
    if (!(p->eps >= 0 && isfinite(p->eps))) BAD("optim %s: eps must be finite and >= 0, got %g", k, p->eps);
    if (p->adam_count_every < 0)
      BAD("optim %s: adam_count_every must be >= 1 (0: 1), got %lld", k, (long long)p->adam_count_every);
  }
  if (!(p->weight_decay >= 0 && isfinite(p->weight_decay)))
    BAD("optim %s: weight_decay must be finite and >= 0, got %g", k, p->weight_decay);
  if (p->weight_decay > 0 && p->kind != EVO_OPTIM_ADAMW)
    BAD("optim %s: weight_decay is decoupled decay for adamw only (add l2 * params to the gradient instead)", k);
  if (p->kind == EVO_OPTIM_CLIPUP && !(p->max_speed > 0 && isfinite(p->max_speed)))
    BAD("optim clipup: max_speed must be finite and > 0, got %g", p->max_speed);
  if (!(p->clip_norm >= 0)) BAD("optim %s: clip_norm must be >= 0 (0: no clipping), got %g", k, p->clip_norm);
  switch (p->schedule) {
  case EVO_SCHEDULE_CONSTANT: break;
  case EVO_SCHEDULE_EXPONENTIAL:
    if (!(p->decay_rate > 0 && isfinite(p->decay_rate)))
      BAD("optim %s: decay_rate must be finite and > 0, got %g", k, p->decay_rate);
    /* fall through */
  case EVO_SCHEDULE_COSINE:
    if (p->decay_steps < 1) BAD("optim %s: decay_steps must be >= 1, got %lld", k, (long long)p->decay_steps);
    if (p->schedule == EVO_SCHEDULE_COSINE && !(p->alpha >= 0 && p->alpha <= 1))
      BAD("optim %s: cosine alpha must be in [0, 1], got %g", k, p->alpha);
    break;
  default: BAD("optim %s: unknown schedule %d", k, (int)p->schedule);
  }
  if (p->warmup_steps < 0) BAD("optim %s: warmup_steps must be >= 0, got %lld", k, (long long)p->warmup_steps);
#undef BAD
  return EVO_STATUS_OK;
}

static void add_state(evo_optim *o, const char *name, double *data, int64_t n) {
  o->names[o->n_state] = name, o->data[o->n_state] = data, o->sizes[o->n_state] = n;
  o->n_state++;
}

evo_status evo_optim_new(const evo_optim_params *p, int64_t n, evo_optim **out) {
  *out = NULL;
  evo_status st = check_params(p, n);
  if (st != EVO_STATUS_OK) return st;
  evo_optim *o = calloc(1, sizeof *o);
  if (!o) return evo_error(EVO_STATUS_OUT_OF_MEMORY, "optim: out of memory");
  o->p = *p;
  o->n = n;
  int need_m = p->kind != EVO_OPTIM_SGD, need_v = p->kind == EVO_OPTIM_ADAM || p->kind == EVO_OPTIM_ADAMW;
  if (need_m) o->m = calloc((size_t)n, sizeof(double));
  if (need_v) o->v = calloc((size_t)n, sizeof(double));
  if ((need_m && !o->m) || (need_v && !o->v)) {
    evo_optim_free(o);
    return evo_error(EVO_STATUS_OUT_OF_MEMORY, "optim: out of memory for %lld parameters", (long long)n);
  }
  /* Names follow optax's state fields (TraceState.trace, ScaleByAdamState.mu/nu, count). */
  if (p->kind == EVO_OPTIM_MOMENTUM || p->kind == EVO_OPTIM_NESTEROV) add_state(o, "optim.trace", o->m, n);
  if (need_v) add_state(o, "optim.mu", o->m, n), add_state(o, "optim.nu", o->v, n);
  if (p->kind == EVO_OPTIM_CLIPUP) add_state(o, "optim.velocity", o->m, n);
  add_state(o, "optim.count", &o->count, 1);
  *out = o;
  return EVO_STATUS_OK;
}

void evo_optim_free(evo_optim *o) {
  if (!o) return;
  free(o->m);
  free(o->v);
  free(o);
}

int64_t evo_optim_steps(const evo_optim *o) { return (int64_t)o->count; }

/* Optax's schedules; warmup is optax.linear_schedule(0, lr, warmup_steps) joined (optax.join_schedules) with the
   decay schedule, which then counts from the end of the warmup. */
double evo_optim_lr(const evo_optim *o) {
  const evo_optim_params *p = &o->p;
  double t = o->count;
  if (p->warmup_steps > 0) {
    if (t < (double)p->warmup_steps) return p->lr * t / (double)p->warmup_steps;
    t -= (double)p->warmup_steps;
  }
  switch (p->schedule) {
  case EVO_SCHEDULE_EXPONENTIAL: return p->lr * pow(p->decay_rate, t / (double)p->decay_steps);
  case EVO_SCHEDULE_COSINE: {
    double c = fmin(t, (double)p->decay_steps) / (double)p->decay_steps;
    return p->lr * (p->alpha + (1 - p->alpha) * 0.5 * (1 + cos(EVO_OPTIM_PI * c)));
  }
  default: return p->lr;
  }
}

static double norm2(const double *x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += x[i] * x[i];
  return sqrt(s);
}

static double gnorm(const float *x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return sqrt(s);
}

evo_status evo_optim_step(evo_optim *o, float *params, const float *grad) {
  const evo_optim_params *p = &o->p;
  const int64_t n = o->n;
  const double lr = evo_optim_lr(o);
  double gscale = 1;
  /* optax.clip_by_global_norm: g stays unless ||g|| >= max_norm, then g * max_norm / ||g||. */
  if (p->clip_norm > 0) {
    double g = gnorm(grad, n);
    if (g >= p->clip_norm) gscale = p->clip_norm / g;
  }
  double *m = o->m, *v = o->v;
  evo_optim_coef c;
  evo_optim_coef_next(o, &c);
  c.gscale = gscale;
  /* The elementwise rules split over threads for large n with the same bits (each element is on its own). */
  switch (p->kind) {
  case EVO_OPTIM_SGD:
#pragma omp parallel for schedule(static) if (n >= EVO_OPTIM_PAR_MIN)
    for (int64_t i = 0; i < n; i++) params[i] = evo_optim_sgd_elem(&c, params[i], grad[i]);
    break;
  case EVO_OPTIM_MOMENTUM:
  case EVO_OPTIM_NESTEROV:
#pragma omp parallel for schedule(static) if (n >= EVO_OPTIM_PAR_MIN)
    for (int64_t i = 0; i < n; i++) params[i] = evo_optim_momentum_elem(&c, params[i], grad[i], &m[i]);
    break;
  case EVO_OPTIM_ADAM:
  case EVO_OPTIM_ADAMW:
#pragma omp parallel for schedule(static) if (n >= EVO_OPTIM_PAR_MIN)
    for (int64_t i = 0; i < n; i++) params[i] = evo_optim_adam_elem(&c, params[i], grad[i], &m[i], &v[i]);
    break;
  case EVO_OPTIM_CLIPUP: {
    /* The direction only (so global-norm clipping has no effect here); a zero gradient adds nothing, where the
       paper divides by ||g|| unguarded. */
    double g = gnorm(grad, n);
    double a = g > 0 ? lr / g : 0;
    for (int64_t i = 0; i < n; i++) m[i] = p->momentum * m[i] + a * grad[i];
    double s = norm2(m, n);
    if (s > p->max_speed) {
      double c = p->max_speed / s;
      for (int64_t i = 0; i < n; i++) m[i] *= c;
    }
    for (int64_t i = 0; i < n; i++) params[i] = (float)(params[i] - m[i]);
    break;
  }
  }
  o->count += 1;
  return EVO_STATUS_OK;
}

bool evo_optim_coef_next(const evo_optim *o, evo_optim_coef *c) {
  const evo_optim_params *p = &o->p;
  const int64_t every = p->adam_count_every > 1 ? p->adam_count_every : 1;
  const double t = floor(o->count / (double)every) + 1;
  *c = (evo_optim_coef){.kind = p->kind, .lr = evo_optim_lr(o), .gscale = 1, .mu = p->momentum, .b1 = p->beta1,
                        .b2 = p->beta2, .c1 = 1 - pow(p->beta1, t), .c2 = 1 - pow(p->beta2, t), .eps = p->eps,
                        .wd = p->kind == EVO_OPTIM_ADAMW ? p->weight_decay : 0};
  return p->kind != EVO_OPTIM_CLIPUP;
}

void evo_optim_advance(evo_optim *o) { o->count += 1; }

int evo_optim_state_count(const evo_optim *o) { return o->n_state; }

void evo_optim_state_at(evo_optim *o, int i, const char **name, double **data, int64_t *n) {
  if (i < 0 || i >= o->n_state) {
    *name = NULL, *data = NULL, *n = 0;
    return;
  }
  *name = o->names[i], *data = o->data[i], *n = o->sizes[i];
}
