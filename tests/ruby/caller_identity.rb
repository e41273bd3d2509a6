# A real consumer of credential_process: the AWS SDK for Ruby v3 (Debian ruby-aws-sdk-core, which
# bundles STS).
#
#   ruby caller_identity.rb PROFILE STS_URL [CALLS]
#
# Makes ONE Aws::STS::Client for PROFILE (its credential_process resolves the credentials, through
# the SDK's default chain: the shared config's profile -> Aws::ProcessCredentials), with the
# endpoint set here (this SDK version reads no endpoint from the profile), calls GetCallerIdentity
# CALLS times (default 2) and prints one JSON line {"Arn": ...} per call.
require 'json'
require 'aws-sdk-core'

unless [2, 3].include?(ARGV.length)
  warn 'usage: ruby caller_identity.rb PROFILE STS_URL [CALLS]'
  exit 2
end
profile, endpoint, calls = ARGV[0], ARGV[1], (ARGV[2] || '2')
unless calls =~ /\A[1-9][0-9]*\z/
  warn "caller_identity.rb: CALLS must be a positive integer, not #{calls.inspect}"
  exit 2
end

begin
  client = Aws::STS::Client.new(profile: profile, endpoint: endpoint, retry_limit: 0)
  calls.to_i.times do
    arn = client.get_caller_identity.arn
    $stdout.puts(JSON.generate('Arn' => arn))
  end
rescue StandardError => e
  warn "caller_identity.rb: #{e.class}: #{e.message}"
  exit 1
end
