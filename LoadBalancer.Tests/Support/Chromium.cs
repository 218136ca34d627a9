using Microsoft.Playwright;

namespace LoadBalancer.Tests.Support;

// One headless Chromium for a test class: the system's (Debian's chromium package, which .ci/run
// installs), driven by Playwright's driver. Playwright never downloads a browser here. A missing
// browser fails the tests that need it, saying what to install: never a silent skip.
public sealed class Chromium : IAsyncLifetime
{
    /// <summary>Where the browser is: LOADBALANCER_CHROMIUM, else Debian's /usr/bin/chromium.</summary>
    public static string ExecutablePath => Environment.GetEnvironmentVariable("LOADBALANCER_CHROMIUM") ?? "/usr/bin/chromium";

    IPlaywright? _playwright;
    IBrowser? _browser;

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("Chromium did not start");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ExecutablePath))
            throw new FileNotFoundException($"no Chromium at {ExecutablePath}: install Debian's chromium (apt-get install chromium; .ci/run does) or set LOADBALANCER_CHROMIUM");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            // As root (CI) Chromium's sandbox cannot start; Playwright passes --no-sandbox. The rest
            // keep it off the network it has no business with (the machine's network is closed).
            Args = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--disable-default-apps", "--disable-extensions"],
        });
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
    }
}
