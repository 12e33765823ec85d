"""A guarded agent loop: every side effect under a lease, every decision signed and logged,
and a kill order that stops the loop at once.

    python examples/guarded_agent.py                 # against http://127.0.0.1:8400
    CUSTODES_NODE_URL=http://127.0.0.1:8401 python examples/guarded_agent.py --steps 5

The agent (enrolled first, see enrolment.py) asks its home node for an operating lease,
then trades in a loop. ``Guard.run`` refuses an action without a valid lease or under a
kill order; the ``DecisionRecorder`` signs each decision with the agent's key, spools it
to disk, and delivers it exactly once. Half-way through, the home regulator suspends
the agent: the order is pushed to the guard, the next trade is refused, the operator's
safe-state hook runs once, and the guard records the halt in the log.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from enrolment import admin_token, enrol, node_url

from custodes.client import Client
from custodes.sdk import DecisionRecorder, Guard, Halted


def trade(step: int) -> str:
    """The side effect the guard protects: here, a pretend order to an exchange."""
    return f"bought 10 MWh (order {step})"


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", default=node_url())
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    agent = enrol(args.node, admin_token())
    print(f"agent {agent.agent_id} enrolled at {args.node}")
    # Pin the node's entry key: leases and pushed kill orders must be signed with it.
    node = Client.pinned(args.node)
    node_key = node.node_info().node_entry_public_key

    with tempfile.TemporaryDirectory(prefix="agent-spool-") as spool:
        recorder = DecisionRecorder(node, agent.agent_id, agent.key, Path(spool))
        guard = Guard(
            agent.agent_id,
            agent.key,
            args.node,
            node_key,
            safe_state=lambda: print("safe state: open orders cancelled"),
            recorder=recorder,
        )
        with guard:
            if not guard.wait_for_lease(10):
                print("no lease: the agent may not act")
                return 1
            lease = guard.lease
            assert lease is not None
            print(f"lease for {sorted(lease.jurisdictions)}, {lease.exp - time.time():.0f} s left")
            for step in range(args.steps):
                if step == args.steps // 2:
                    order = agent.regulator.order("suspend", agent.agent_id, "example halt")
                    print(f"regulator suspends the agent (order {order['order_id']})")
                    wait_for(lambda: guard.halted() is not None, 10)
                try:
                    done = guard.run(trade, agent.jurisdiction, step)
                except Halted as halted:
                    print(f"step {step}: refused ({halted.reason})")
                    break
                recorder.record(f"trade {step}", f"{done}: hedge per mandate")
                print(f"step {step}: {done}")
        delivered = recorder.flush(30)
        recorder.close()
    print(f"decisions delivered: {'all' if delivered else 'not all (still spooled)'}")
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
