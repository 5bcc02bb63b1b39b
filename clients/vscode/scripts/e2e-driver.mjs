// Drives code-server in headless Chromium (puppeteer-core): see scripts/e2e.sh.
// Each step says what it waits for, so a failure names the step that did not happen.
import { createRequire } from 'node:module';
import * as path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run scripts/e2e.sh)`);
  return v;
};
const require = createRequire(import.meta.url);
const puppeteer = require(env('E2E_PUPPETEER'));
const artifacts = env('E2E_ARTIFACTS');
const scenario = process.env.E2E_SCENARIO ?? 'server';
const READY_TIMEOUT_MS = Number(process.env.E2E_READY_TIMEOUT_MS ?? 120000);
// vscode-e2e.png for the first scenario (as before), vscode-e2e-install*.png for the other.
const shot = (suffix) => path.join(artifacts, `vscode-e2e${scenario === 'server' ? '' : `-${scenario}`}${suffix}.png`);
const QUERY = 'refresh expired tokens';
const EXPECT_FILE = 'tokens.py';
const EXPECT_LINE = 11; // 1-based line of `def refresh_expired_tokens`

const browser = await puppeteer.launch({
  executablePath: env('E2E_CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1400,900'],
  defaultViewport: { width: 1400, height: 900 },
});
const page = await browser.newPage();
let stepName = 'start';
const step = async (name, fn) => {
  stepName = name;
  console.log(`e2e:   ${name}`);
  return fn();
};

try {
  await step('open the workbench', async () => {
    await page.goto(env('E2E_URL'), { waitUntil: 'domcontentloaded', timeout: 60000 });
    await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 90000 });
  });

  if (scenario === 'install') {
    await step('click the extension\'s "Install semcode" button (no server is installed)', async () => {
      const button = await page.waitForFunction(
        () =>
          [...document.querySelectorAll('.notifications-toasts .monaco-button, .notifications-center .monaco-button')].find(
            (el) => el.textContent?.trim() === 'Install semcode',
          ),
        { timeout: 120000, polling: 500 },
      );
      await page.screenshot({ path: shot('-offer') });
      await button.asElement().click();
    });

    await step('wait for pip to install the wheel into the extension\'s environment', async () => {
      const outcome = await page.waitForFunction(
        () => {
          const texts = [...document.querySelectorAll('.notification-list-item')].map((el) => el.textContent ?? '');
          return texts.find((t) => t.includes('the server is installed in') || t.includes('installing the server failed'));
        },
        { timeout: READY_TIMEOUT_MS, polling: 1000 },
      );
      const text = await outcome.jsonValue();
      if (text.includes('failed')) throw new Error(`the extension says: ${text}`);
      console.log(`e2e:     ${text.replace(/\s+/g, ' ').slice(0, 200)}`);
    });
  }

  await step('wait for the semcode status bar item to say the index is ready', async () => {
    // $(check) when all is well, $(warning) in degraded mode (models are off here).
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('.statusbar-item')].some(
          (el) => el.textContent?.includes('semcode') && el.querySelector('.codicon-check, .codicon-warning'),
        ),
      { timeout: READY_TIMEOUT_MS, polling: 500 },
    );
  });

  await step('run "semcode: Search Code by Meaning" from the command palette', async () => {
    await page.click('.monaco-workbench .part.editor');
    await page.keyboard.press('F1');
    await page.waitForSelector('.quick-input-widget .quick-input-box input', { visible: true });
    await page.keyboard.type('semcode: Search Code by Meaning', { delay: 10 });
    await page.waitForFunction(
      () => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.textContent?.includes('Search Code by Meaning')),
      { timeout: 30000 },
    );
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      () => document.querySelector('.quick-input-widget .quick-input-title')?.textContent?.includes('semcode: Search Code by Meaning'),
      { timeout: 30000 },
    );
  });

  await step(`type "${QUERY}" and wait for the results`, async () => {
    await page.keyboard.type(QUERY, { delay: 20 });
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('.quick-input-list .monaco-list-row')];
        return rows.length > 0 && rows[0].textContent?.includes('refresh_expired_tokens');
      },
      { timeout: 30000, polling: 200 },
    );
    await page.screenshot({ path: shot('-results') });
  });

  await step('press Enter and check the editor', async () => {
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      (file) => document.querySelector('.tabs-container .tab.active')?.textContent?.includes(file),
      { timeout: 30000 },
      EXPECT_FILE,
    );
    await page.waitForFunction(
      (line) => [...document.querySelectorAll('.statusbar-item')].some((el) => new RegExp(`Ln ${line}, Col \\d+`).test(el.textContent ?? '')),
      { timeout: 30000 },
      EXPECT_LINE,
    );
    // The active item is previewed while the list is open, so the editor checks above can
    // pass before Enter lands: what proves the pick is the list closing.
    await page
      .waitForFunction(
        () => {
          const el = document.querySelector('.quick-input-widget');
          return !el || getComputedStyle(el).display === 'none';
        },
        { timeout: 10000, polling: 100 },
      )
      .catch(() => {
        throw new Error('the QuickPick is still open 10 s after Enter');
      });
    await new Promise((r) => setTimeout(r, 500));
    await page.screenshot({ path: shot('') });
  });
  console.log(`e2e:   ok: ${EXPECT_FILE} opened at line ${EXPECT_LINE}`);
} catch (err) {
  console.error(`e2e: step failed: ${stepName}: ${err.message}`);
  await page.screenshot({ path: shot('-failure') }).catch(() => undefined);
  await browser.close();
  process.exit(1);
}
await browser.close();
