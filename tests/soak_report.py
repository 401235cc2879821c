#!/usr/bin/env python3
"""soak_report.py: the soak test's JSON report (tests/soak.c --json FILE) as markdown.

    python3 tests/soak_report.py build/tests/soak.json > soak.md

Prints the run's figures and the per-minute table, as docs/RELIABILITY.md records them.
"""
import json
import sys


def mib(b):
    return b / (1 << 20)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ('-h', '--help'):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        r = json.load(f)
    c, t, m, ix, h, ld = r['config'], r['totals'], r['memory'], r['index'], r['history'], r['load']
    secs = t['run_seconds']
    print(f"Result: **{'ok' if r['ok'] else 'FAIL'}**"
          + ''.join(f"\n- failure: {x}" for x in r['failures']))
    print()
    print(f"- run: {secs:.0f} s, {c['threads']} scoring threads, model {c['model']}, {c['cores']} cores")
    print(f"- requests: {c['requests']} distinct (up to {c['max_candidates']} candidates, {c['request_users']} users),"
          f" scored {t['requests']:,} times ({t['requests'] / secs:.1f}/s, {t['candidates']:,} candidates)")
    print(f"- errors: {t['errors']}, invalid scores: {t['invalid_scores']}")
    print(f"- appends: {t['appends']} of {c['batch']} events every {c['append_every']:g} s"
          f" ({t['append_failures']} failed), {t['append_seconds_mean']:.2f} s mean,"
          f" {t['append_seconds_max']:.2f} s max")
    print(f"- index: {ix['events_start']:,} -> {ix['events_end']:,} events, users {ix['users_start']:,} ->"
          f" {ix['users_end']:,}, items {ix['items_start']:,} -> {ix['items_end']:,}; file {mib(ix['bytes_start']):.1f}"
          f" -> {mib(ix['bytes_end']):.1f} MiB, pages in use {mib(ix['used_start']):.1f} -> {mib(ix['used_end']):.1f}"
          " MiB")
    print(f"- visibility: {t['visibility_checks']} checks, {t['visibility_failures']} failures; the requests' users'"
          f" history: mean {h['mean_start']:.0f} (max {h['max_start']:,}) -> mean {h['mean_end']:.0f}"
          f" (max {h['max_end']:,}) events")
    print(f"- load average (1, 5, 15 min): start {', '.join(f'{x:.2f}' for x in ld['start'])};"
          f" end {', '.join(f'{x:.2f}' for x in ld['end'])}")
    print()
    print(f"| memory (MiB) | start | warm-up ({m['warmup_t']:.0f} s) | end ({m['end_t']:.0f} s)"
          " | growth after warm-up |")
    print("|---|---:|---:|---:|---:|")
    for key, name in (('vmrss', 'VmRSS'), ('rss_anon', 'RssAnon'), ('rss_file', 'RssFile'),
                      ('heap', 'heap in use (mallinfo2)')):
        s, w, e = m['start'][key], m['warmup'][key], m['end'][key]
        extra = f" (tolerance {mib(m['tolerance']):.0f})" if key == 'rss_anon' else ''
        print(f"| {name} | {mib(s):.1f} | {mib(w):.1f} | {mib(e):.1f} | {mib(e - w):+.2f}{extra} |")
    print()
    print("| minute | requests | req/s | errors | p50 ms | p90 ms | p99 ms | max ms | appends | RssAnon MiB"
          " | RssFile MiB | index MiB | load 1 min |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for x in r['minutes']:
        rate = x['requests'] / x['seconds'] if x['seconds'] > 0 else 0
        print(f"| {x['minute']} | {x['requests']:,} | {rate:.1f} | {x['errors'] + x['invalid_scores']} |"
              f" {x['p50_ms']:.1f} | {x['p90_ms']:.1f} | {x['p99_ms']:.1f} | {x['max_ms']:.1f} | {x['appends']} |"
              f" {mib(x['rss_anon']):.1f} | {mib(x['rss_file']):.1f} | {mib(x['index_bytes']):.1f}"
              f" | {x['load1']:.2f} |")
    return 0


if __name__ == '__main__':
    sys.exit(main())
