// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Pure modules: no I/O, no client libraries. See DESIGN.md "Modules".
    files: [
      'src/servicetable/**',
      'src/balancer/**',
      'src/h2/**',
      'src/drain/**',
      'src/lib/**',
      'src/iptables/render.ts',
      'src/iptables/plan.ts',
      'src/iptables/adopt.ts',
      'src/iptables/firewall.ts',
      'src/proxy/port-allocator.ts',
      'src/cluster/report.ts',
      'src/cluster/auth.ts',
      'src/cluster/view.ts',
      'src/cluster/lease.ts',
      'src/cluster/aggregate.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'node:net',
              allowImportNames: ['isIP', 'isIPv4', 'isIPv6'],
              message:
                'pure module: only the address helpers of node:net (docs/design.md, "Modules")',
            },
          ],
          patterns: [
            {
              group: [
                'node:fs',
                'node:fs/*',
                'node:child_process',
                'node:http',
                'node:http2',
                'node:dgram',
                '@kubernetes/client-node',
                'prom-client',
                'pino',
              ],
              message: 'pure module: no I/O or client libraries here (docs/design.md, "Modules")',
            },
          ],
        },
      ],
    },
  },
);
