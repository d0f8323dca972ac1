"""webinfra benchmarks on the local lab: deploy speed, data path, fault windows, replication.

Run after `make lab` (it uses the lab's inventory, hosts and internal CA):

    make bench            # or: .venv/bin/python tools/bench [--only deploy,mitogen,...]

Steps (each prints its progress and its figures):
  deploy       re-creates the lab hosts (images present), times site.yml on the fresh hosts, a
               no-op re-run and a --check run, with the changed count of each, next to two
               floors: one trivial module run on every host (ping), and one apt transaction per
               host of the packages the fresh deploy installed, all hosts at once (on hosts
               re-created for it); then a second fresh deploy; the ratios to the floors
  datapath     wrk from a client container: requests/s and latency p50/p99 through HAProxy and
               direct to one web server, for a static page and an application page
  faults       bounded load through the balancer while one web server's application is killed
               (SIGKILL): failed requests, and the seconds until HAProxy marks it DOWN
  ha           a second lab with two balancers sharing a virtual IP and separate primary and
               replica hosts (inventories/lab-ha), created and deployed for the step and removed
               after it: seconds without service when the VRRP master's container is stopped
               under load, and the write window and lost acknowledged writes of a switchover
               under write load (through the writer endpoint), then automatic database failover
               (HA agents, leader lease in etcd): the leader frozen (podman pause) under write load,
               --failover-trials times, with read_only sampled on every database host every 200 ms:
               write window (median, worst), lost acknowledged writes, samples with two writable
  replication  sysbench oltp_write_only on the primary (60 s, 4 threads) while the replica's lag
               is sampled every second by the webinfra.distributed.replication_info module itself
               (its payload, kept on the replica after one ad hoc run, executed there each second);
               then the table checksums of primary and replica are compared
  console      the stack's overview page (Prometheus' console template, published by the lab on
               127.0.0.1:9090) opened in headless Chromium (Debian's package, installed when
               missing): a screenshot next to the results and what the rendered page shows

  backup       a sysbench database of about --backup-gib GiB on the primary; a full backup (from the
               replica to the backup host): MB/s; the archive's lag behind the primary's binary
               log while sysbench writes (RPO); a restore of that backup onto the backup host
               (playbooks/restore.yml, a scratch restore) and its table checksums; a rebuild of
               the replica streamed from the primary (playbooks/rebuild.yml) with the primary's
               disk growth; a restore drill on the backup host
  mitogen      site.yml with Ansible's linear strategy and with Mitogen's (requirements-bench.txt),
               alternately: two no-op re-runs each, then one fresh deploy each on re-created hosts
  scaling      labs of 2, 4 and 6 web servers with 1 replica, and 4 with 2 (each web server
               hosting a database, as in the lab), created for the step and removed after it:
               site.yml fresh and no-op, each next to the module floor of that lab

Results: bench/results/<UTC time>.json and .md, and bench/results/latest.{json,md}; the charts
(tools/charts.py, run by `make bench`) and the console screenshot as bench/results/<time>-*.png.
Targets are reported, never asserted. Load goes only to the lab's own containers; every load is
bounded in time. The direct measurements need the client to reach a web server (3306 and the
backend port are firewalled): the tool opens a rule for the client's address only, in the
host's own nftables table, and removes it afterwards.

Layout: one module per step (deploy, mitogen, datapath, faults, replication, console, backup,
ha, scaling), each defining STEP (common.Step: how it runs, its rows of the results table, its
targets); steps.py is the registry, report.py the results table, cli.py the command line; the
probes the steps share with the Molecule tests are tools/probes.py.
"""
