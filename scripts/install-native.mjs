#!/usr/bin/env node
// The package's install step (`npm install emseg`, `npm install ./emseg-x.y.z.tgz`): builds the oneDNN addon with
// node-gyp against the system's oneDNN. In a development checkout (src/ and the Makefile beside this script) it does
// nothing: `make setup` builds the addon there, after installing the system packages it needs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (line) => process.stderr.write(`emseg install: ${line}\n`);

if (existsSync(join(root, 'src')) && existsSync(join(root, 'Makefile'))) process.exit(0);
if (process.env.EMSEG_SKIP_NATIVE) {
  say('EMSEG_SKIP_NATIVE is set: the oneDNN addon is not built; only the (slow) reference backend will run (--backend reference)');
  process.exit(0);
}

/** Folders a C++ compiler searches for headers by default, plus those the environment adds. */
function includeDirs() {
  const fromEnv = ['CPATH', 'CPLUS_INCLUDE_PATH'].flatMap((v) => (process.env[v] ?? '').split(':')).filter(Boolean);
  const roots = [process.env.DNNLROOT, process.env.DNNL_ROOT].filter(Boolean).map((r) => join(r, 'include'));
  return [...fromEnv, ...roots, '/usr/include', '/usr/local/include', '/opt/homebrew/include'];
}

if (!includeDirs().some((dir) => existsSync(join(dir, 'dnnl.hpp')))) {
  say(`cannot build the native addon: oneDNN (libdnnl) is not installed (no dnnl.hpp in ${includeDirs().join(', ')}).
  Install oneDNN and a C++ toolchain, then run 'npm rebuild emseg':
    Debian/Ubuntu: sudo apt-get install libdnnl-dev g++ make python3
    elsewhere: a oneDNN build, with CPATH and LIBRARY_PATH (and LD_LIBRARY_PATH) pointing at it
  Or install without it (the slow reference backend only): EMSEG_SKIP_NATIVE=1 npm install ...`);
  process.exit(1);
}

// npm runs install scripts with its own node-gyp (npm_config_node_gyp); the node headers of this node, when they are
// installed beside it, spare node-gyp a download (an offline machine has no other way to get them).
const gyp = process.env.npm_config_node_gyp ? [process.execPath, process.env.npm_config_node_gyp] : ['node-gyp'];
const prefix = dirname(dirname(process.execPath));
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
const build = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild', '--directory', join(root, 'native'), ...nodedir], { stdio: 'inherit' });
if (build.status !== 0) {
  say(`building the native addon failed (${build.error?.message ?? `exit ${build.status}`}; see above). It needs oneDNN
  (libdnnl-dev), g++, make and python3; fix the cause and run 'npm rebuild emseg'.`);
  process.exit(1);
}
