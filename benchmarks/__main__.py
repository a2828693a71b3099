"""`make bench` / `python -m benchmarks [agi_load options]`: every benchmark in turn, each with its own baseline;
the options (`--quick`, `--only 1,2,3`, `--against REV`) go to the FastAGI one."""
import sys

from benchmarks import agi_load, classic_bench, routing_bench, traffic_bench

if __name__ == "__main__":
    agi_args, sys.argv[1:] = sys.argv[1:], []      # the other benchmarks read sys.argv themselves
    print("== routing: decision and load+validate ==")
    routing_bench.main()
    print("\n== FastAGI engine vs bare panoramisk app ==")
    agi_load.main(agi_args)
    print("\n== traffic replay: 1 M recorded calls vs a bare loop over them ==")
    traffic_bench.main()
    print("\n== classic AGI: a process per call vs a bare pyst2 script ==")
    classic_bench.main()
