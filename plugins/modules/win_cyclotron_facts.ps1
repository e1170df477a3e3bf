#!powershell

# Copyright: (c) 2025, Cyclotron contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

#AnsibleRequires -CSharpUtil Ansible.Basic

# Deliberately minimal: native output goes back raw and the controller parses it
# (cyclotron_py.windows.to_raw, tested against recorded output). What happens here
# is finding files, running read-only commands, and keeping secret values on the host.

$allSources = @('winget', 'choco', 'registry', 'env', 'mcp', 'commands', 'git')
$spec = @{
    options = @{
        home = @{ type = 'path' }
        env_files = @{ type = 'list'; elements = 'path'; default = @() }
        api_key_patterns = @{
            type = 'list'; elements = 'str'
            default = @('(?i)(^|_)(api_?key|token|secret|password|access_key(_id)?)($|_)', '(?i)_KEY$')
        }
        project_dirs = @{ type = 'list'; elements = 'path'; default = @() }
        commands = @{
            type = 'list'; elements = 'dict'
            options = @{
                name = @{ type = 'str'; required = $true }
                argv = @{ type = 'list'; elements = 'str'; required = $true }
                regex = @{ type = 'str' }
            }
            default = @(
                @{ name = 'git'; argv = @('git', '--version') }
                @{ name = 'python'; argv = @('python', '--version') }
                @{ name = 'pip'; argv = @('pip', '--version') }
                @{ name = 'node'; argv = @('node', '--version') }
                @{ name = 'npm'; argv = @('npm', '--version') }
            )
        }
        git_roots = @{ type = 'list'; elements = 'path'; default = @() }
        git_max_depth = @{ type = 'int'; default = 3 }
        sources = @{ type = 'list'; elements = 'str'; choices = $allSources; default = $allSources }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$p = $module.Params

$patterns = foreach ($pattern in $p.api_key_patterns) {
    try { [regex]::new($pattern) }
    catch { $module.FailJson("api_key_patterns: '$pattern' is not a valid regex: $($_.Exception.Message)", $_) }
}
# Another user's profile when running as SYSTEM; the caller's profile otherwise.
$userHome = if ($p.home) { $p.home } else { [Environment]::GetFolderPath('UserProfile') }
$appData = if ($p.home -or -not $env:APPDATA) { Join-Path $userHome 'AppData\Roaming' } else { $env:APPDATA }
$localAppData = if ($p.home -or -not $env:LOCALAPPDATA) { Join-Path $userHome 'AppData\Local' } else { $env:LOCALAPPDATA }

$raw = [ordered]@{
    winget_export = $null
    winget_error = $null
    choco_list = $null
    choco_error = $null
    registry = New-Object -TypeName 'System.Collections.Generic.List[object]'
    env_names = @()
    env_files = @{}
    mcp_files = @{}
    commands = New-Object -TypeName 'System.Collections.Generic.List[object]'
    git_repos = New-Object -TypeName 'System.Collections.Generic.List[object]'
    os = $null
    home = $userHome
    api_key_patterns = $p.api_key_patterns
    errors = New-Object -TypeName 'System.Collections.Generic.List[object]'
}

Function Add-SourceError {
    param([string]$Source, [string]$Message)
    $raw.errors.Add(@{ source = $Source; message = $Message })
}

Function Invoke-Native {
    param([string]$Path, [string[]]$Arguments)
    # With the module's 'Stop', PS 5.1 turns the first stderr line of 2>&1 into a terminating error.
    $ErrorActionPreference = 'Continue'
    $lines = $null | & $Path @Arguments 2>&1 | ForEach-Object { "$_" }
    $text = ($lines -join "`n")
    if ($text.Length -gt 8000) { $text = $text.Substring(0, 8000) }
    @{ rc = $LASTEXITCODE; output = $text }
}

Function Test-KeyName {
    param([string]$Name)
    foreach ($re in $patterns) { if ($re.IsMatch($Name)) { return $true } }
    $false
}

Function Read-TextFile {
    param([string]$Path)
    if (Test-Path -LiteralPath $Path -PathType Leaf) { [System.IO.File]::ReadAllText($Path) } else { $null }
}

Function Remove-UrlSecret {
    # http(s)/ws(s) lose the whole user:password@ (a token is often the user name); others keep the user.
    param([string]$Text)
    ($Text -replace '\b((?:http|ws)s?://)[^/@\s"]*@', '$1') -replace '(://[^/@\s":]*):[^/@\s"]*@', '$1@'
}

Function ConvertTo-SafeMcpJson {
    # Keep only server blocks and blank every env/headers value: secrets stay on the host.
    param([string]$Text)
    $doc = $Text | ConvertFrom-Json
    if ($doc -isnot [System.Management.Automation.PSCustomObject]) { throw 'top level is not an object' }
    $blocks = New-Object -TypeName 'System.Collections.Generic.List[object]'
    $out = [ordered]@{}
    foreach ($name in 'mcpServers', 'servers') {
        if ($null -ne $doc.$name) { $out[$name] = $doc.$name; $blocks.Add($doc.$name) }
    }
    if ($doc.projects -is [System.Management.Automation.PSCustomObject]) {
        $projects = [ordered]@{}
        foreach ($project in $doc.projects.PSObject.Properties) {
            $servers = $project.Value.mcpServers
            if ($null -ne $servers) { $projects[$project.Name] = @{ mcpServers = $servers }; $blocks.Add($servers) }
        }
        if ($projects.Count) { $out.projects = $projects }
    }
    foreach ($block in $blocks) {
        foreach ($server in @($block.PSObject.Properties)) {
            foreach ($secretBlock in 'env', 'headers') {
                $values = $server.Value.$secretBlock
                if ($values -is [System.Management.Automation.PSCustomObject]) {
                    foreach ($item in $values.PSObject.Properties) { $item.Value = '' }
                }
            }
        }
    }
    # URL passwords go too (a database URL in args); the controller redacts the rest.
    Remove-UrlSecret (ConvertTo-Json -InputObject $out -Depth 20 -Compress)
}

Function Find-GitRepo {
    param([string]$Root, [int]$MaxDepth)
    $queue = New-Object -TypeName 'System.Collections.Generic.Queue[object]'
    $queue.Enqueue(@($Root, 0))
    while ($queue.Count) {
        $dir, $depth = $queue.Dequeue()
        if (Test-Path -LiteralPath (Join-Path $dir '.git')) { $dir; continue }
        if ($depth -ge $MaxDepth) { continue }
        # No -Force: hidden folders (AppData) are skipped; so are junctions (loops) and dependency trees.
        foreach ($child in Get-ChildItem -LiteralPath $dir -Directory -ErrorAction SilentlyContinue) {
            $skip = ($child.Name -in @('node_modules', 'venv')) -or $child.Name.StartsWith('.') -or
                [bool]($child.Attributes -band [System.IO.FileAttributes]::ReparsePoint)
            if (-not $skip) { $queue.Enqueue(@($child.FullName, ($depth + 1))) }
        }
    }
}

Function Get-GitRepoInfo {
    param([string]$Dir)
    $gitDir = Join-Path $Dir '.git'
    if (Test-Path -LiteralPath $gitDir -PathType Leaf) {
        # Worktrees and submodules: .git is a file "gitdir: <path>".
        $pointer = (Read-TextFile $gitDir).Trim() -replace '^gitdir:\s*', ''
        $gitDir = if ([System.IO.Path]::IsPathRooted($pointer)) { $pointer } else { Join-Path $Dir $pointer }
    }
    $commonDir = $gitDir
    $common = Read-TextFile (Join-Path $gitDir 'commondir')
    if ($common) { $commonDir = Join-Path $gitDir $common.Trim() }
    $head = Read-TextFile (Join-Path $gitDir 'HEAD')
    $refText = $null
    if ($head -match '^ref:\s*(\S+)') {
        $ref = $Matches[1]
        $refText = Read-TextFile (Join-Path $commonDir ($ref -replace '/', '\'))
        if (-not $refText) {
            $packed = Read-TextFile (Join-Path $commonDir 'packed-refs')
            if ($packed) {
                $refText = ($packed -split "`r?`n") | Where-Object { $_ -match " $([regex]::Escape($ref))$" } |
                    Select-Object -First 1
            }
        }
    }
    # Section headers and url lines only, credentials cut: a config can hold http.extraHeader tokens.
    $config = Read-TextFile (Join-Path $commonDir 'config')
    $configText = $null
    if ($config) {
        $kept = ($config -split "`r?`n") | Where-Object { $_ -match '^\s*\[|^\s*url\s*=' }
        $configText = Remove-UrlSecret (@($kept) -join "`n")
    }
    @{ path = $Dir; head_text = $head; ref_text = $refText; config_text = $configText }
}

if ('winget' -in $p.sources) {
    $winget = Get-Command -Name winget.exe -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $winget) {
        $raw.winget_error = 'winget.exe is not on PATH: winget is installed per user (App Installer) and fails ' +
            'as SYSTEM or in a plain WinRM session; run this module with become_method runas as the logged-in user'
    }
    else {
        $tmp = Join-Path ([System.IO.Path]::GetTempPath()) "cyclotron-winget-$([guid]::NewGuid()).json"
        try {
            $res = Invoke-Native -Path $winget.Source -Arguments @(
                'export', '-o', $tmp, '--include-versions', '--accept-source-agreements')
            if (Test-Path -LiteralPath $tmp -PathType Leaf) { $raw.winget_export = [System.IO.File]::ReadAllText($tmp) }
            else { $raw.winget_error = "winget export wrote no file (rc $($res.rc)): $($res.output)" }
        }
        catch { $raw.winget_error = "winget export failed: $($_.Exception.Message)" }
        finally { Remove-Item -LiteralPath $tmp -Force -ErrorAction SilentlyContinue }
    }
}

if ('choco' -in $p.sources) {
    $choco = Get-Command -Name choco.exe -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($choco) {
        try {
            $version = (Invoke-Native -Path $choco.Source -Arguments @('--version')).output
            # choco v1 `list` searches the remote feed; local packages need --local-only there.
            $listArgs = if ($version -match '(?m)^\s*[01]\.') { @('list', '--local-only', '-r') } else { @('list', '-r') }
            $res = Invoke-Native -Path $choco.Source -Arguments $listArgs
            if ($res.rc -eq 0) { $raw.choco_list = $res.output }
            else { $raw.choco_error = "choco $($listArgs -join ' ') exited $($res.rc): $($res.output)" }
        }
        catch { $raw.choco_error = "choco list failed: $($_.Exception.Message)" }
    }
}

if ('registry' -in $p.sources) {
    $uninstall = 'SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall'
    $locations = @(
        @{ hive = 'HKLM'; path = "HKLM:\$uninstall" }
        @{ hive = 'HKLM'; path = "HKLM:\$($uninstall -replace '^SOFTWARE', 'SOFTWARE\WOW6432Node')" }
        @{ hive = 'HKCU'; path = "HKCU:\$uninstall" }
    )
    foreach ($location in $locations) {
        if (-not (Test-Path -LiteralPath $location.path)) { continue }
        try {
            foreach ($key in Get-ChildItem -LiteralPath $location.path -ErrorAction SilentlyContinue) {
                $entry = @{ key = $key.Name; hive = $location.hive }
                foreach ($name in 'DisplayName', 'DisplayVersion', 'Publisher', 'InstallDate', 'SystemComponent',
                    'ParentKeyName', 'WindowsInstaller') {
                    $entry[$name] = $key.GetValue($name)
                }
                $raw.registry.Add($entry)
            }
        }
        catch { Add-SourceError -Source 'registry' -Message "$($location.path): $($_.Exception.Message)" }
    }
}

if ('env' -in $p.sources) {
    # Names only, filtered by api_key_patterns; values are never read into the result.
    $names = New-Object -TypeName 'System.Collections.Generic.SortedSet[string]' -ArgumentList ([StringComparer]::OrdinalIgnoreCase)
    foreach ($target in 'User', 'Machine', 'Process') {
        foreach ($name in [Environment]::GetEnvironmentVariables($target).Keys) {
            if (Test-KeyName $name) { $null = $names.Add($name) }
        }
    }
    $raw.env_names = @($names)
    foreach ($file in $p.env_files) {
        if (-not (Test-Path -LiteralPath $file -PathType Leaf)) { continue }
        try {
            $fileNames = New-Object -TypeName 'System.Collections.Generic.List[string]'
            foreach ($line in [System.IO.File]::ReadAllLines($file)) {
                if ($line -match '^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=') {
                    $name = $Matches[1]
                    if ((Test-KeyName $name) -and -not $fileNames.Contains($name)) { $fileNames.Add($name) }
                }
            }
            $raw.env_files[$file] = $fileNames
        }
        catch { Add-SourceError -Source 'env' -Message "${file}: $($_.Exception.Message)" }
    }
}

if ('mcp' -in $p.sources) {
    $candidates = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $candidates.Add((Join-Path $userHome '.claude.json'))
    $candidates.Add((Join-Path $appData 'Claude\claude_desktop_config.json'))
    # The MSIX build of Claude Desktop reads a virtualised copy (anthropics/claude-code#26073).
    $packages = Join-Path $localAppData 'Packages'
    foreach ($dir in Get-ChildItem -LiteralPath $packages -Directory -Filter 'Claude_*' -ErrorAction SilentlyContinue) {
        $candidates.Add((Join-Path $dir.FullName 'LocalCache\Roaming\Claude\claude_desktop_config.json'))
    }
    $candidates.Add((Join-Path $userHome '.cursor\mcp.json'))
    $candidates.Add((Join-Path $appData 'Code\User\mcp.json'))
    $candidates.Add((Join-Path $appData 'Code - Insiders\User\mcp.json'))
    foreach ($dir in $p.project_dirs) {
        foreach ($relative in '.mcp.json', '.cursor\mcp.json', '.vscode\mcp.json') {
            $candidates.Add((Join-Path $dir $relative))
        }
    }
    foreach ($file in $candidates) {
        if (-not (Test-Path -LiteralPath $file -PathType Leaf) -or $raw.mcp_files.Contains($file)) { continue }
        try {
            $text = [System.IO.File]::ReadAllText($file)
            $raw.mcp_files[$file] = if ([string]::IsNullOrWhiteSpace($text)) { '' } else { ConvertTo-SafeMcpJson -Text $text }
        }
        catch {
            # Not the parser's message: it can quote the file, secrets included.
            $raw.mcp_files[$file] = $null
            Add-SourceError -Source 'mcp' -Message ("${file}: cannot be read as JSON by Windows PowerShell (syntax error, " +
                'comments, or keys that differ only in case); fix the file')
        }
    }
}

if ('commands' -in $p.sources) {
    foreach ($probe in $p.commands) {
        $argv = @($probe.argv)
        $found = Get-Command -Name $argv[0] -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        if (-not $found) { continue }
        try {
            $res = Invoke-Native -Path $found.Source -Arguments @($argv | Select-Object -Skip 1)
            $raw.commands.Add(@{
                    name = $probe.name; path = $found.Source; version_output = $res.output; rc = $res.rc; regex = $probe.regex
                })
        }
        catch { Add-SourceError -Source 'commands' -Message "$($probe.name): $($_.Exception.Message)" }
    }
}

if ('git' -in $p.sources) {
    foreach ($root in $p.git_roots) {
        if (-not (Test-Path -LiteralPath $root -PathType Container)) { continue }
        try {
            foreach ($repo in Find-GitRepo -Root $root -MaxDepth $p.git_max_depth) {
                $raw.git_repos.Add((Get-GitRepoInfo -Dir $repo))
            }
        }
        catch { Add-SourceError -Source 'git' -Message "${root}: $($_.Exception.Message)" }
    }
}

try {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem -ErrorAction Stop
    $arch = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
    $raw.os = @{ version = $os.Version; caption = $os.Caption; arch = $arch }
}
catch {
    $raw.os = @{ version = [Environment]::OSVersion.Version.ToString(); caption = ''; arch = $env:PROCESSOR_ARCHITECTURE }
    Add-SourceError -Source 'os' -Message "Win32_OperatingSystem: $($_.Exception.Message)"
}

$module.Result.ansible_facts = @{ cyclotron_raw_windows = $raw }
$module.ExitJson()
