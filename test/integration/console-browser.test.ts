import { execFile } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'

/**
 * The key console in a real browser (Debian's Chromium through playwright-core), against a real gateway on
 * PostgreSQL: one browser for the whole file, a fresh context (cookie jar) per person. Keys made in the console are
 * used with curl against the gateway. With CONSOLE_SCREENSHOTS_DIR set, each page is also photographed there
 * (`CONSOLE_SCREENSHOTS_DIR=docs/console npx tap test/integration/console-browser.test.ts` makes the README's).
 */
const CHROMIUM = '/usr/bin/chromium'
const SHOTS = process.env.CONSOLE_SCREENSHOTS_DIR
const run = promisify(execFile)
const BOB = { username: 'bob', email: 'bob@example.com', password: 'bob has a long password' }

/** What curl gets from the gateway with `key`: the HTTP status. */
async function curlStatus(base: string, key: string): Promise<number> {
  try {
    const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${key}`, `${base}/api/v1/auth/me`])
    return Number(stdout)
  } catch (err) {
    throw new Error(`curl could not run (${(err as Error).message.split('\n')[0]}); install it with: apt-get install -y curl`)
  }
}

async function launch(): Promise<Browser> {
  try {
    return await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
  } catch (err) {
    throw new Error(`Chromium could not start from ${CHROMIUM} (${(err as Error).message.split('\n')[0]}); install it with: apt-get install -y chromium`)
  }
}

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return
  mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

t.test('the key console', async (t) => {
  const kg = await keygateOnPostgres('console_browser', { KEYGATE_MAX_KEYS_PER_USER: '5' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const browser = await launch()
  t.teardown(() => browser.close())
  const consoleUrl = kg.url + '/console/'
  const admin = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  t.equal((await call(kg.url, 'POST', '/api/v1/auth/users', { token: admin, body: BOB })).status, 201)

  /** A new browser context (its own cookies) on the console, signed in as `who` through the sign-in form. */
  async function signIn(who: { username: string; password: string }, context?: BrowserContext): Promise<{ page: Page; context: BrowserContext }> {
    context ??= await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'] })
    const page = await context.newPage()
    await page.goto(consoleUrl)
    await page.getByRole('textbox', { name: 'Username', exact: true }).fill(who.username)
    await page.getByLabel('Password', { exact: true }).fill(who.password)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByRole('heading', { name: 'My API keys' }).waitFor()
    return { page, context }
  }

  await t.test('sign in, create a key, read it from the one-time panel, curl gets 200; revoked in the console, curl gets 401', async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'] })
    t.teardown(() => context.close())
    const page = await context.newPage()
    await page.goto(consoleUrl)
    await page.getByRole('heading', { name: 'Sign in to Keygate' }).waitFor()
    await shot(page, 'sign-in')
    await page.getByRole('textbox', { name: 'Username', exact: true }).fill(BOOTSTRAP.username)
    await page.getByLabel('Password', { exact: true }).fill('a wrong password')
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    t.match(await page.getByRole('alert').textContent(), /Invalid username or password/, 'a wrong password is said plainly')
    await page.getByLabel('Password', { exact: true }).fill(BOOTSTRAP.password)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByRole('heading', { name: 'My API keys' }).waitFor()
    t.ok(await page.getByRole('button', { name: 'Sign out', exact: true }).isVisible(), 'Sign out is offered')

    await page.getByRole('textbox', { name: 'Key name', exact: true }).fill('billing worker')
    await page.getByLabel('Expires').selectOption('30')
    await page.getByRole('button', { name: 'Create key', exact: true }).click()
    const secret = page.getByRole('textbox', { name: 'New API key' })
    await secret.waitFor()
    const key = await secret.inputValue()
    t.match(key, /^sk_live_[0-9A-Za-z]{49}$/, 'the one-time panel shows the whole key')
    t.match(await page.locator('.secret-panel').textContent(), /shown only once/, 'with a clear warning')
    await page.getByRole('button', { name: 'Copy', exact: true }).click()
    await page.getByText('Copied to the clipboard.').waitFor()
    t.equal(await page.evaluate(() => navigator.clipboard.readText()), key, 'Copy puts the key on the clipboard')
    await page.getByRole('row', { name: /billing worker/ }).waitFor()
    await shot(page, 'keys-created')

    const kept = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookies: document.cookie, url: location.href, title: document.title }))
    t.same([kept.local, kept.session, kept.cookies], [0, 0, ''], 'nothing in the page\'s storage; the refresh cookie is HttpOnly')
    t.notOk(kept.url.includes(key) || kept.title.includes(key), 'the key is not in the URL or the title')

    t.equal(await curlStatus(kg.url, key), 200, 'curl with the new key: 200')

    await page.getByRole('button', { name: 'Done' }).click()
    t.equal(await page.getByRole('textbox', { name: 'New API key' }).count(), 0, 'Done forgets the secret')
    await page.reload()
    await page.getByRole('heading', { name: 'My API keys' }).waitFor()
    t.pass('a reload signs in again with the refresh cookie')
    t.equal(await page.getByRole('textbox', { name: 'New API key' }).count(), 0, 'and the secret is not shown again')
    t.notOk((await page.content()).includes(key), 'nowhere in the page')
    const display = await page.getByRole('row', { name: /billing worker/ }).locator('code').textContent()
    t.match(display, /^sk_live_\w{4}…\w{4}$/, 'the listing shows the display form only')

    const revoke = page.getByRole('row', { name: /billing worker/ }).getByRole('button', { name: 'Revoke', exact: true })
    await revoke.click()
    const dialog = page.getByRole('dialog', { name: /Revoke “billing worker”/ })
    await dialog.waitFor()
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    t.equal(await curlStatus(kg.url, key), 200, 'Cancel keeps the key')
    await revoke.click()
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click()
    await page.getByText('Key “billing worker” revoked.').waitFor()
    t.equal(await curlStatus(kg.url, key), 401, 'curl with the revoked key: 401')
    t.equal(await page.getByRole('row', { name: /billing worker/ }).count(), 0, 'gone from the list')

    await page.getByRole('button', { name: 'Sign out', exact: true }).click()
    await page.getByRole('heading', { name: 'Sign in to Keygate' }).waitFor()
    await page.reload()
    await page.getByRole('heading', { name: 'Sign in to Keygate' }).waitFor()
    t.pass('Sign out ends the session: a reload asks to sign in')
  })

  await t.test('roll with a grace period: the new secret is shown once, the old one keeps working', async (t) => {
    const { page, context } = await signIn(BOOTSTRAP)
    t.teardown(() => context.close())
    await page.getByRole('textbox', { name: 'Key name', exact: true }).fill('deploy')
    await page.getByRole('button', { name: 'Create key', exact: true }).click()
    const old = await page.getByRole('textbox', { name: 'New API key' }).inputValue()
    await page.getByRole('button', { name: 'Done' }).click()
    await page.getByRole('row', { name: /deploy/ }).getByRole('button', { name: 'Roll', exact: true }).click()
    const dialog = page.getByRole('dialog', { name: /Roll “deploy”/ })
    await dialog.getByLabel('Grace period').selectOption('3600')
    await shot(page, 'keys-roll')
    await dialog.getByRole('button', { name: 'Roll key' }).click()
    const fresh = await page.getByRole('textbox', { name: 'New API key' }).inputValue()
    t.not(fresh, old, 'a new secret')
    t.same([await curlStatus(kg.url, fresh), await curlStatus(kg.url, old)], [200, 200], 'both work during the grace period')
    await page.getByRole('button', { name: 'Done' }).click()
    const rows = page.getByRole('row', { name: /deploy/ })
    t.equal(await rows.count(), 2, 'the old key is listed until its grace period ends')
    for (const secret of [fresh, old]) {
      await rows.filter({ hasText: secret.slice(0, 12) }).getByRole('button', { name: 'Revoke', exact: true }).click()
      await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click()
      await page.getByText('Key “deploy” revoked.').waitFor()
      await page.getByText('Key “deploy” revoked.').evaluate((el) => el.remove())
    }
    t.same([await curlStatus(kg.url, fresh), await curlStatus(kg.url, old)], [401, 401], 'both revoked in the console')
  })

  await t.test('a superuser deactivates a user in the console and that user\'s key stops working', async (t) => {
    const bob = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOB })).json.access_token
    const key = (await call(kg.url, 'POST', '/api/v1/auth/api-key', { token: bob, body: { name: 'bob script' } })).json.api_key
    t.equal(await curlStatus(kg.url, key), 200)
    const { page, context } = await signIn(BOOTSTRAP)
    t.teardown(() => context.close())
    await page.getByRole('link', { name: 'Users' }).click()
    const row = page.getByRole('row', { name: /bob/ })
    await row.waitFor()
    await shot(page, 'users')
    await row.getByRole('button', { name: 'Mark verified' }).click()
    await page.getByText('User “bob” marked verified.').waitFor()
    await page.getByRole('row', { name: /bob/ }).getByRole('button', { name: 'Deactivate' }).click()
    await page.getByRole('dialog', { name: /Deactivate “bob”/ }).getByRole('button', { name: 'Deactivate user' }).click()
    await page.getByText('User “bob” deactivated.').waitFor()
    t.equal(await curlStatus(kg.url, key), 401, 'bob\'s key: 401 at once')
    const me = await call(kg.url, 'GET', '/api/v1/auth/me', { token: bob })
    t.equal(me.status, 401, `and bob's login token (${me.json.code})`)

    await page.getByRole('link', { name: 'Audit' }).click()
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor()
    await page.getByRole('row', { name: /user\.deactivated/ }).waitFor()
    await shot(page, 'audit')
    await page.getByLabel('User', { exact: true }).selectOption({ label: 'bob' })
    await page.getByLabel('Event').selectOption('user.deactivated')
    await page.getByRole('button', { name: 'Apply filters' }).click()
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1)
    t.match(await page.locator('tbody tr').textContent(), /user\.deactivated.*alice.*bob/, 'filtered by user and event: the deactivation, by alice, of bob')

    const other = await browser.newContext()
    t.teardown(() => other.close())
    const bobPage = await other.newPage()
    await bobPage.goto(consoleUrl)
    await bobPage.getByRole('textbox', { name: 'Username', exact: true }).fill(BOB.username)
    await bobPage.getByLabel('Password', { exact: true }).fill(BOB.password)
    await bobPage.getByRole('button', { name: 'Sign in', exact: true }).click()
    t.match(await bobPage.getByRole('alert').textContent(), /Invalid username or password/, 'bob can no longer sign in to the console')
  })

  await t.test('the CSP header is present and an injected inline script does not run', async (t) => {
    const { page, context } = await signIn(BOOTSTRAP)
    t.teardown(() => context.close())
    const res = await page.goto(consoleUrl)
    t.match(res?.headers()['content-security-policy'], /script-src 'self'.*frame-ancestors 'none'/)
    await page.getByRole('heading', { name: 'My API keys' }).waitFor()
    const outcome = await page.evaluate(async () => {
      const violations: string[] = []
      document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective))
      const w = window as unknown as { injected?: boolean; handler?: boolean }
      const s = document.createElement('script')
      s.textContent = 'window.injected = true'
      document.body.appendChild(s)
      // An inline script runs as it is inserted, if at all; the handler's event is awaited (listeners added
      // from here are not inline and run whatever the policy).
      const img = document.createElement('img')
      const settled = new Promise((r) => { img.addEventListener('error', r); img.addEventListener('load', r) })
      img.setAttribute('onerror', 'window.handler = true')
      img.setAttribute('onload', 'window.handler = true')
      img.setAttribute('src', 'data:,x')
      document.body.appendChild(img)
      await settled
      return { injected: w.injected === true, handler: w.handler === true, violations }
    })
    t.same([outcome.injected, outcome.handler], [false, false], 'neither the injected script nor the inline handler ran')
    t.ok(outcome.violations.some((v) => v.startsWith('script-src')), 'the browser reports the violation')

    const framed = await context.newPage()
    await framed.setContent('<p>another page</p>')
    await framed.evaluate((src) => new Promise((resolve) => {
      const frame = document.createElement('iframe')
      frame.addEventListener('load', resolve)
      frame.src = src
      document.body.appendChild(frame)
    }), consoleUrl)
    const inner = framed.frames().find((f) => f !== framed.mainFrame())!
    const rendered = await inner.evaluate(() => document.getElementById('main') !== null).catch(() => false)
    t.same([inner.url() === consoleUrl, rendered], [false, false], `the console does not render inside another page's frame (the frame shows ${inner.url()})`)
  })

  await t.test('keyboard only: sign in, create a key, copy it, revoke it', async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'] })
    t.teardown(() => context.close())
    const page = await context.newPage()
    await page.goto(consoleUrl)
    await page.getByRole('heading', { name: 'Sign in to Keygate' }).waitFor()
    const focused = () => page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null
      if (!el) return ''
      const label = el.id ? document.querySelector(`label[for="${el.id}"]`)?.textContent : null
      const name = (el.getAttribute('aria-label') ?? label ?? el.textContent ?? '').trim()
      // A row's button is described by the row's key name: "Revoke (keyboard key)".
      const of = el.getAttribute('aria-describedby')
      const described = of && el.tagName === 'BUTTON' ? document.getElementById(of)?.textContent : null
      return described ? `${name} (${described})` : name
    })
    /** Presses Tab until the focused control is named `name` (at most 40 times). */
    const tabTo = async (name: string) => {
      for (let i = 0; i < 40; i++) {
        if ((await focused()) === name) return
        await page.keyboard.press('Tab')
      }
      throw new Error(`Tab never reached "${name}"`)
    }
    t.equal(await focused(), 'Username', 'the page opens with the focus in Username')
    await page.keyboard.type(BOOTSTRAP.username)
    await page.keyboard.press('Tab')
    t.equal(await focused(), 'Password')
    await page.keyboard.type(BOOTSTRAP.password)
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { name: 'My API keys' }).waitFor()
    await tabTo('Key name')
    await page.keyboard.type('keyboard key')
    await tabTo('Create key')
    await page.keyboard.press('Enter')
    await page.getByRole('textbox', { name: 'New API key' }).waitFor()
    await tabTo('Copy')
    await page.keyboard.press('Enter')
    await page.getByText('Copied to the clipboard.').waitFor()
    const key = await page.evaluate(() => navigator.clipboard.readText())
    t.match(key, /^sk_live_/, 'copied by keyboard')
    t.equal(await curlStatus(kg.url, key), 200)
    await tabTo('Done')
    await page.keyboard.press('Enter')
    await tabTo('Revoke (keyboard key)')
    await page.keyboard.press('Enter')
    await page.getByRole('dialog').waitFor()
    t.equal(await focused(), 'Cancel', 'the confirmation opens with the focus on Cancel')
    await page.keyboard.press('Escape')
    t.equal(await page.getByRole('dialog').count(), 0, 'Escape closes it')
    t.equal(await focused(), 'Revoke (keyboard key)', 'and the focus returns to Revoke')
    await page.keyboard.press('Enter')
    await page.keyboard.press('Tab')
    t.equal(await focused(), 'Revoke key')
    await page.keyboard.press('Enter')
    await page.getByText('Key “keyboard key” revoked.').waitFor()
    t.equal(await curlStatus(kg.url, key), 401, 'revoked by keyboard')
  })

  await t.test('sessions and profile pages; log out everywhere signs this browser out', async (t) => {
    const first = await signIn(BOOTSTRAP)
    t.teardown(() => first.context.close())
    const { page, context } = await signIn(BOOTSTRAP)
    t.teardown(() => context.close())
    await page.getByRole('link', { name: 'Profile' }).click()
    await page.getByRole('heading', { name: 'My profile' }).waitFor()
    await page.getByLabel('Full name').fill('Alice Liddell')
    await page.getByRole('button', { name: 'Save profile' }).click()
    await page.getByText('Profile saved.').waitFor()
    await shot(page, 'profile')
    await page.getByRole('link', { name: 'Sessions' }).click()
    await page.getByRole('heading', { name: 'Sessions' }).waitFor()
    await page.getByText('This browser').waitFor()
    t.ok((await page.locator('tbody tr').count()) >= 2, 'both browsers\' sessions are listed')
    await shot(page, 'sessions')
    await page.getByRole('button', { name: 'Log out everywhere' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Log out everywhere' }).click()
    await page.getByRole('heading', { name: 'Sign in to Keygate' }).waitFor()
    t.match(await page.getByRole('status').first().textContent(), /Signed out everywhere/)
    await first.page.getByRole('link', { name: 'Sessions' }).click()
    await first.page.getByRole('heading', { name: 'Sign in to Keygate' }).waitFor()
    t.pass('the other browser is signed out too')
  })
})
