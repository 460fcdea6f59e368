"""`spkt up` then `spkt down`: everything it started is gone afterwards (checked by pid)."""
import os
import subprocess
import sys

import pytest

from deploy.kafka import KafkaCluster, free_port_block
from deploy.stack import Stack, settings_environment
from spkt.settings import Settings
from tests.support import alive, free_port

pytestmark = pytest.mark.e2e


def spkt(args, settings, timeout):
    env = {**os.environ, **settings_environment(settings)}
    env.pop("SPKT_KAFKA_BOOTSTRAP")  # the broker is embedded: `spkt up` starts it
    return subprocess.run([sys.executable, "-m", "spkt.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_up_starts_everything_and_down_leaves_no_process(tmp_path):
    port, controller = free_port_block(1)
    settings = Settings(state_dir=tmp_path / "state", kafka_port=port, kafka_controller_port=controller,
                        api_port=free_port(), cache_dir=Settings().cache_dir, jwt_secret="t" * 40)
    stack, cluster = Stack(settings), KafkaCluster(settings)
    pids: list[int] = []
    try:
        started = spkt(["up", "--detach"], settings, timeout=300)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "SPKT Dispatch is running" in started.stdout
        broker_pids, stack_pids = cluster.pids(), stack.pids()
        pids = broker_pids + stack_pids
        running = {p.name: p.state for p in stack.processes()}
        assert running == {name: "RUNNING" for name in stack.programs}
        assert len(broker_pids) == 1 and len(stack_pids) == len(stack.programs) + 1  # + supervisord
        assert all(alive(pid) for pid in pids)

        stopped = spkt(["down"], settings, timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert [pid for pid in pids if alive(pid)] == []
        assert stack.supervisord_pid() is None and cluster.pids() == []
    finally:
        stack.stop()
        cluster.down()
        for pid in pids:
            if alive(pid):
                os.kill(pid, 9)
