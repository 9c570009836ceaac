"""Long property-based run of the public API (the in-suite tests run ~120 cases each).

    python benchmarks/fuzz_long.py --cases 10000

Draws cases with tests/test_hypothesis.py's ``draw_case`` strategy (every dtype family,
shapes with 0 and 1, NaN/inf, magnitudes 1e-300..1e300, duplicates, n_clusters edge
cases, layouts and every source type) and judges each with its ``check_case`` oracle:
a verified result or an allowed ValueError/TypeError.  A crash (segfault) would kill
this process; any other exception or wrong result stops the run with Hypothesis's
shrunk counterexample.  Prints the number of cases run, the outcomes and the time.
"""
import argparse
import collections
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402

import test_hypothesis as th  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference-cases", type=int, default=0,
                    help="also run this many cases of the comparison with the NumPy "
                         "reference Lloyd")
    args = ap.parse_args()
    outcomes = collections.Counter()
    t0 = time.perf_counter()

    @settings(max_examples=args.cases, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(th.draw_case())
    def run(case):
        outcomes[th.check_case(case)] += 1
        done = sum(outcomes.values())
        if done % 1000 == 0:
            print(f"... {done} cases, {time.perf_counter() - t0:.0f} s", flush=True)

    from hypothesis import seed as hseed
    hseed(args.seed)(run)()
    n = sum(outcomes.values())
    print(f"cases run: {n} (asked {args.cases}); outcomes: {dict(outcomes)}; "
          f"{time.perf_counter() - t0:.0f} s")
    if args.reference_cases:
        t1 = time.perf_counter()
        count = [0]

        @settings(max_examples=args.reference_cases, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(th.well_conditioned())
        def ref(case):
            count[0] += 1
            th.test_equals_numpy_reference_lloyd.hypothesis.inner_test(case)

        hseed(args.seed)(ref)()
        print(f"reference cases run: {count[0]}; {time.perf_counter() - t1:.0f} s")


if __name__ == "__main__":
    main()
