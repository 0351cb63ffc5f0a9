#!/usr/bin/python3
"""Reference values for tests/test_tasks.c: CartPole steps written independently from the C code, straight from
../shared/specs/cartpole.md (swing-up: EvoJAX's cartpole_swingup.py; balance: Gym's CartPole-v1), with NumPy.

One-step cases are computed in float64 from the float32 inputs (the C code steps in float32, so the test allows
~1e-5 relative); the trajectory case is stepped in float32 like the C code and EvoJAX.

Usage: /usr/bin/python3 scripts/cartpole_ref.py   (prints the C tables pasted into tests/test_tasks.c)
"""
import numpy as np

# ---- swing-up (EvoJAX) ----
G, MC, MP, L, B, FORCE, DT, XLIM = 9.82, 0.5, 0.5, 0.6, 0.1, 10.0, 0.01, 2.4


def swingup_step(s, a, dt=np.float64):
    x, x_dot, th, th_dot = (dt(v) for v in s)
    f = dt(np.clip(dt(a), -1.0, 1.0) * FORCE)
    sn, c = np.sin(th), np.cos(th)
    m = dt(MC + MP)
    mpl = dt(MP) * dt(L)
    x_acc = (dt(-2) * mpl * th_dot**2 * sn + dt(3) * dt(MP) * dt(G) * sn * c + dt(4) * f - dt(4) * dt(B) * x_dot) / (
        dt(4) * m - dt(3) * dt(MP) * c**2)
    th_acc = (dt(-3) * mpl * th_dot**2 * sn * c + dt(6) * m * dt(G) * sn + dt(6) * (f - dt(B) * x_dot) * c) / (
        dt(4) * dt(L) * m - dt(3) * mpl * c**2)
    return (x + x_dot * dt(DT), x_dot + x_acc * dt(DT), th + th_dot * dt(DT), th_dot + th_acc * dt(DT))


def swingup_reward(s, dt=np.float64):
    x, _, th, _ = s
    return (np.cos(th) + dt(1)) / dt(2) * np.cos((x / dt(XLIM)) * (dt(np.pi) / dt(2)))


# ---- balance (Gym CartPole-v1) ----
BG, BMC, BMP, BHL, BFORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
THETA_LIM = 12 * 2 * np.pi / 360


def balance_step(s, a):
    x, x_dot, th, th_dot = (np.float64(v) for v in s)
    f = BFORCE if a == 1 else -BFORCE
    c, sn = np.cos(th), np.sin(th)
    m = BMC + BMP
    mpl = BMP * BHL
    temp = (f + mpl * th_dot**2 * sn) / m
    th_acc = (BG * sn - c * temp) / (BHL * (4.0 / 3.0 - BMP * c**2 / m))
    x_acc = temp - mpl * th_acc * c / m
    return (x + TAU * x_dot, x_dot + TAU * x_acc, th + TAU * th_dot, th_dot + TAU * th_acc)


def f32(v):
    return float(np.float32(v))


def fmt(v):
    return "%.9g" % v


def main():
    swing_cases = [
        ((0.0, 0.0, np.pi, 0.0), 0.0),
        ((0.5, -1.2, 2.5, 3.0), 0.7),
        ((-2.0, 2.0, 0.3, -4.0), 5.0),   # action clipped to 1
        ((1.0, 0.25, -0.75, 1.5), -0.4),
        ((2.39, 2.0, -0.1, 1.0), -3.0),  # leaves the track: done
    ]
    print("/* scripts/cartpole_ref.py: swing-up one step {x, x_dot, theta, theta_dot, action,"
          " x', x_dot', theta', theta_dot', reward} */")
    print("static const double swingup_one_step[][10] = {")
    for s, a in swing_cases:
        s = tuple(f32(v) for v in s)
        a = f32(a)
        n = swingup_step(s, a)
        r = swingup_reward(n)
        print("    {" + ", ".join(fmt(v) for v in (*s, a, *n, r)) + "},")
    print("};")

    bal_cases = [((0.01, -0.02, 0.03, 0.04), 1), ((-1.0, 0.5, -0.15, -1.0), 0), ((2.0, -1.5, 0.2, 2.0), 1)]
    print("/* scripts/cartpole_ref.py: balance one step {x, x_dot, theta, theta_dot, action, x', x_dot', theta',"
          " theta_dot'} */")
    print("static const double balance_one_step[][9] = {")
    for s, a in bal_cases:
        s = tuple(f32(v) for v in s)
        n = balance_step(s, a)
        print("    {" + ", ".join(fmt(v) for v in (*s, a, *n)) + "},")
    print("};")

    # Trajectory in float32: start (0.1, 0, 3.0, 0), action_t = 0.8 sin(0.05 t), 300 steps (no track exit).
    s = tuple(np.float32(v) for v in (0.1, 0.0, 3.0, 0.0))
    total = np.float64(0)
    for t in range(300):
        a = np.float32(0.8 * np.cos(0.1 * t))
        s = swingup_step(s, a, dt=np.float32)
        assert abs(s[0]) <= XLIM
        total += np.float64(swingup_reward(s, dt=np.float32))
    print("/* scripts/cartpole_ref.py: swing-up from (0.1, 0, 3, 0), action_t = (float)(0.8 cos(0.1 t)), 300 steps,"
          " float32: {x, x_dot, theta, theta_dot, return} */")
    print("static const double swingup_traj300[5] = {" + ", ".join(fmt(float(v)) for v in (*s, total)) + "};")


if __name__ == "__main__":
    main()
