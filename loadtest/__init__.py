"""loadtest: ``make loadtest`` — drive a real gateway process with a real loopback sink and
report throughput, latency, losses, duplicates, memory and CPU against a framework floor.

Modules (each also runs as its own process, ``python -m loadtest.<name>``):

    http.py    a minimal HTTP/1.1 parser shared by the asyncio sink and driver
    sink.py    the destination: counts every delivered alert by fingerprint + status
    floor.py   a bare quart-trio app on hypercorn that answers 200 at once (the floor)
    driver.py  the client: N connections, optional rate, re-sends 5xx like Alertmanager
    run.py     the orchestrator: start, measure, stop by PID, then ``report.py``

All traffic stays on 127.0.0.1; every run is bounded by duration and request count.
"""
